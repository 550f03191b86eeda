"""Shot-boundary detection scores with TRECVID conventions.

Frames are indices of decoded frames. A cut is one frame (the first frame of the new shot); a
gradual transition is an inclusive interval ``[s, e]`` (the frames that mix both shots).
``PAD = 2`` frames, ``k`` is a cut tolerance (0, 1 and 2 by default), ``K`` the largest one.
Every matching is one-to-one: each ground-truth (GT) item and each prediction is used at most
once. Matchings have the largest possible number of pairs; among candidates, nearer (cuts) or
more overlapping (intervals) pairs are taken first (greedy by score, then augmenting paths).

Hard cuts, at each tolerance k
    GT cuts g and predicted cuts p match when ``|g - p| <= k``.
    ``TP_k`` = matched pairs, ``FN_k`` = GT cuts - TP_k,
    ``FP_k`` = predicted cuts that are neither matched nor "on a gradual" (below).
Gradual transitions (predictions of any kind but ``cut``)
    GT ``[s, e]`` and predicted ``[s', e']`` match when they overlap by at least one frame,
    ``overlap = min(e, e') - max(s, s') + 1 >= 1``; the largest overlap is preferred.
    ``TP`` = pairs, ``FN`` = GT graduals - TP (a gradual found only as a cut is a miss),
    ``FP`` = predicted graduals that are neither matched nor "on a cut" (below).
    Type accuracy = pairs whose predicted kind equals the GT kind / TP (``gradual``, "type
    unknown", is never the GT kind). Frame recall = sum of overlaps / sum of GT lengths and
    frame precision = sum of overlaps / sum of predicted lengths, over the pairs (TRECVID's
    frame-level scores of gradual transitions).
Type confusions (reported, and neither a TP nor an FP)
    found as cut: a GT gradual left unmatched, one-to-one with a predicted cut in
    ``[s - PAD, e + PAD]`` that matched no GT cut at tolerance K.
    cut found as gradual: a GT cut left unmatched at K, one-to-one with a predicted gradual
    touching ``[g - PAD, g + PAD]`` that overlaps no GT gradual.
All transitions, whatever their type
    every prediction ``[s', e']`` (a cut is ``[p, p]``) matches a GT transition when it touches
    ``[s - PAD, e + PAD]``; TP = pairs, FP = predictions - TP, FN = GT transitions - TP. Fair
    to detectors that only report cuts.
Noted transitions (e.g. ``same_location`` cuts)
    recall = noted GT transitions matched in the all-transitions matching / noted GT ones.
False cuts on hard negatives
    a prediction of any kind is a false cut on a hard negative ``[a, b]`` (a flash, a whip-pan)
    when ``[s', e']`` touches ``[a - 1, b + 1]``; each prediction counts once per kind of
    negative. Reported per ten negatives: ``10 * false cuts / negatives of that kind``.

P, R and F1
    ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``, ``F1 = 2 TP / (2 TP + FP + FN)``
    (= 2PR / (P + R)). With nothing predicted P = 1, with nothing to find R = 1, and F1 = 1
    only when there is nothing to find and nothing is predicted: a detector that predicts
    nothing on a film with transitions has P = 1, R = 0, F1 = 0.
Set scores are micro-averaged: counts are summed over films, then P, R, F1 and the ratios
are computed from the sums.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from muss_builder.bench.sbd.matching import (
    cut_score,
    match,
    overlap_frames,
    overlap_score,
    padded_score,
    touches,
)
from muss_builder.bench.sbd.tally import Counts, FilmScore
from muss_builder.bench.sbd.truth import GroundTruth, Span, as_spans
from muss_builder.shots.transitions import Transition

PAD = 2  # frames around a GT transition for type confusions and the all-transitions score
NEGATIVE_PAD = 1  # frames around a hard negative
TOLERANCES = (0, 1, 2)


def score_film(
    gt_transitions: Iterable[Transition | Span | Mapping],
    predicted: Iterable[Transition | Span | Mapping],
    hard_negatives: Iterable[Span | Mapping] = (),
    tolerances: Sequence[int] = TOLERANCES,
    *,
    film: str = "",
    n_frames: int = 0,
    fps: float = 0.0,
) -> FilmScore:
    """Score one film's predicted transitions against its ground truth (module doc)."""
    if not tolerances or min(tolerances) < 0:
        raise ValueError("tolerances must be non-negative frame counts")
    gt, pred, negatives = as_spans(gt_transitions), as_spans(predicted), as_spans(hard_negatives)
    gt_cuts = [g for g in gt if g.is_cut]
    gt_grads = [g for g in gt if not g.is_cut]
    p_cuts = [p for p in pred if p.is_cut]
    p_grads = [p for p in pred if not p.is_cut]

    grad_pairs = match(gt_grads, p_grads, overlap_score)
    cut_pairs = {k: match(gt_cuts, p_cuts, cut_score(k)) for k in sorted(set(tolerances))}
    widest = cut_pairs[max(tolerances)]
    as_cut = _found_as_cut(gt_grads, p_cuts, grad_pairs, widest)
    as_gradual = _cut_found_as_gradual(gt_cuts, gt_grads, p_grads, grad_pairs, widest)

    excused_cuts = {j for _, j in as_cut}
    cuts = {}
    for k, pairs in cut_pairs.items():
        matched = {j for _, j in pairs}
        fp = sum(1 for j in range(len(p_cuts)) if j not in matched and j not in excused_cuts)
        cuts[k] = Counts(len(pairs), fp, len(gt_cuts) - len(pairs))
    excused_grads = {j for _, j in as_gradual}
    matched_grads = {j for _, j in grad_pairs}
    grad_fp = sum(
        1 for j in range(len(p_grads)) if j not in matched_grads and j not in excused_grads
    )
    all_pairs = match(gt, pred, padded_score(PAD))
    neg_kinds = Counter(n.kind for n in negatives)
    return FilmScore(
        film=film,
        n_frames=n_frames,
        duration_seconds=n_frames / fps if fps else 0.0,
        cuts=cuts,
        graduals=Counts(len(grad_pairs), grad_fp, len(gt_grads) - len(grad_pairs)),
        gradual_type_correct=sum(gt_grads[i].kind == p_grads[j].kind for i, j in grad_pairs),
        gradual_overlap_frames=sum(overlap_frames(gt_grads[i], p_grads[j]) for i, j in grad_pairs),
        gradual_gt_frames=sum(gt_grads[i].n_frames for i, _ in grad_pairs),
        gradual_pred_frames=sum(p_grads[j].n_frames for _, j in grad_pairs),
        graduals_found_as_cut=len(as_cut),
        cuts_found_as_gradual=len(as_gradual),
        transitions=Counts(len(all_pairs), len(pred) - len(all_pairs), len(gt) - len(all_pairs)),
        noted=_noted(gt, all_pairs),
        negatives=dict(neg_kinds),
        false_on_negatives={kind: _false_on(pred, negatives, kind) for kind in neg_kinds},
    )


def _found_as_cut(
    gt_grads: list[Span],
    p_cuts: list[Span],
    grad_pairs: list[tuple[int, int]],
    cut_pairs: list[tuple[int, int]],
) -> list[tuple[int, int]]:
    """GT graduals missed as graduals, one-to-one with a spare predicted cut near them."""
    missed = [i for i in range(len(gt_grads)) if i not in {i for i, _ in grad_pairs}]
    spare = [j for j in range(len(p_cuts)) if j not in {j for _, j in cut_pairs}]
    pairs = match([gt_grads[i] for i in missed], [p_cuts[j] for j in spare], padded_score(PAD))
    return [(missed[a], spare[b]) for a, b in pairs]


def _cut_found_as_gradual(
    gt_cuts: list[Span],
    gt_grads: list[Span],
    p_grads: list[Span],
    grad_pairs: list[tuple[int, int]],
    cut_pairs: list[tuple[int, int]],
) -> list[tuple[int, int]]:
    """GT cuts missed as cuts, one-to-one with a spare predicted gradual touching them."""
    missed = [i for i in range(len(gt_cuts)) if i not in {i for i, _ in cut_pairs}]
    matched = {j for _, j in grad_pairs}
    spare = [
        j
        for j, p in enumerate(p_grads)
        if j not in matched and not any(overlap_frames(p, g) for g in gt_grads)
    ]
    pairs = match([gt_cuts[i] for i in missed], [p_grads[j] for j in spare], padded_score(PAD))
    return [(missed[a], spare[b]) for a, b in pairs]


def _noted(gt: list[Span], pairs: list[tuple[int, int]]) -> dict[str, Counts]:
    found = {i for i, _ in pairs}
    out: dict[str, Counts] = {}
    for i, g in enumerate(gt):
        if g.note:
            hit = Counts(tp=1) if i in found else Counts(fn=1)
            out[g.note] = out.get(g.note, Counts()) + hit
    return out


def _false_on(pred: list[Span], negatives: list[Span], kind: str) -> int:
    """Predictions touching a hard negative of ``kind`` padded by NEGATIVE_PAD frames."""
    zones = [
        (n.start_frame - NEGATIVE_PAD, n.end_frame + NEGATIVE_PAD)
        for n in negatives
        if n.kind == kind
    ]
    return sum(1 for p in pred if any(touches(p, a, b) for a, b in zones))


def score_ground_truth(
    gt: GroundTruth,
    predicted: Iterable[Transition | Span | Mapping],
    tolerances: Sequence[int] = TOLERANCES,
) -> FilmScore:
    """``score_film`` with the film's name, length and hard negatives taken from ``gt``."""
    return score_film(
        gt.transitions,
        predicted,
        gt.hard_negatives,
        tolerances,
        film=gt.name,
        n_frames=gt.n_frames,
        fps=gt.fps,
    )
