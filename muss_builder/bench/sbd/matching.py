"""One-to-one matching of ground-truth and predicted transitions, and the pair scores
that decide which pairs may match (conventions: ``scoring.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from muss_builder.bench.sbd.truth import Span


def touches(a: Span, start: int, end: int) -> bool:
    """Whether ``a`` shares at least one frame with ``[start, end]``."""
    return a.start_frame <= end and start <= a.end_frame


def overlap_frames(a: Span, b: Span) -> int:
    return max(0, min(a.end_frame, b.end_frame) - max(a.start_frame, b.start_frame) + 1)


def match(
    gt: Sequence[Span],
    pred: Sequence[Span],
    score: Callable[[Span, Span], float | None],
) -> list[tuple[int, int]]:
    """Maximum one-to-one matching of ``gt`` and ``pred`` indices.

    ``score(g, p)`` is None when g and p cannot match, else higher for a better pair. Pairs are
    taken greedily by score (the nearest cut, the largest overlap), then augmenting paths add
    pairs until no more can be added, so the number of pairs is the maximum possible.
    """
    candidates: list[tuple[float, int, int]] = []
    for i, g in enumerate(gt):
        for j, p in enumerate(pred):
            s = score(g, p)
            if s is not None:
                candidates.append((-s, i, j))
    candidates.sort()
    options: dict[int, list[int]] = {}
    gt_to_pred: dict[int, int] = {}
    pred_to_gt: dict[int, int] = {}
    for _, i, j in candidates:
        options.setdefault(i, []).append(j)
        if i not in gt_to_pred and j not in pred_to_gt:
            gt_to_pred[i], pred_to_gt[j] = j, i

    def augment(i: int, seen: set[int]) -> bool:
        for j in options.get(i, []):
            if j in seen:
                continue
            seen.add(j)
            if j not in pred_to_gt or augment(pred_to_gt[j], seen):
                gt_to_pred[i], pred_to_gt[j] = j, i
                return True
        return False

    for i in sorted(options):
        if i not in gt_to_pred:
            augment(i, set())
    return sorted(gt_to_pred.items())


def cut_score(k: int) -> Callable[[Span, Span], float | None]:
    def score(g: Span, p: Span) -> float | None:
        d = abs(g.start_frame - p.start_frame)
        return -d if d <= k else None

    return score


def overlap_score(g: Span, p: Span) -> float | None:
    overlap = overlap_frames(g, p)
    return overlap if overlap > 0 else None


def padded_score(pad: int) -> Callable[[Span, Span], float | None]:
    """Prediction touching the GT interval padded by ``pad``; prefer overlap, then nearness."""

    def score(g: Span, p: Span) -> float | None:
        if not touches(p, g.start_frame - pad, g.end_frame + pad):
            return None
        centre = abs((g.start_frame + g.end_frame) - (p.start_frame + p.end_frame)) / 2
        return overlap_frames(g, p) - centre / (10 * (g.n_frames + p.n_frames + 2 * pad))

    return score


# ---------------------------------------------------------------------------------------------
# Scores.
