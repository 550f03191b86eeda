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

import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from muss_builder.shots.transitions import Transition

SCHEMA_MAJOR = "1"
PAD = 2  # frames around a GT transition for type confusions and the all-transitions score
NEGATIVE_PAD = 1  # frames around a hard negative
TOLERANCES = (0, 1, 2)
KINDS = ("cut", "dissolve", "fade_black", "fade_white", "wipe", "gradual")


class GroundTruthError(ValueError):
    """A ground-truth or prediction file is unreadable or invalid; the message names it."""


# ---------------------------------------------------------------------------------------------
# File format (benchmarks/sbd/README.md).


class _TransitionDoc(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["cut", "dissolve", "fade_black", "fade_white", "wipe", "gradual"]
    start_frame: NonNegativeInt
    end_frame: NonNegativeInt
    note: str | None = None
    confidence: float = 1.0

    @model_validator(mode="after")
    def _interval(self) -> _TransitionDoc:
        if self.end_frame < self.start_frame:
            raise ValueError("end_frame is before start_frame")
        if self.kind == "cut" and self.end_frame != self.start_frame:
            raise ValueError("a cut has start_frame == end_frame (the new shot's first frame)")
        return self


class _NegativeDoc(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str
    start_frame: NonNegativeInt
    end_frame: NonNegativeInt

    @model_validator(mode="after")
    def _interval(self) -> _NegativeDoc:
        if self.end_frame < self.start_frame:
            raise ValueError("end_frame is before start_frame")
        return self


class _GroundTruthDoc(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: str
    film: str
    fps: PositiveFloat
    n_frames: NonNegativeInt
    width: PositiveInt
    height: PositiveInt
    transitions: list[_TransitionDoc]
    hard_negatives: list[_NegativeDoc] = []
    segments: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _consistent(self) -> _GroundTruthDoc:
        if self.schema_version.split(".")[0] != SCHEMA_MAJOR:
            raise ValueError(f"schema_version {self.schema_version!r} is not {SCHEMA_MAJOR}.x")
        items = [*self.transitions, *self.hard_negatives]
        for item in items:
            if item.end_frame >= self.n_frames:
                raise ValueError(
                    f"{item.kind} {item.start_frame}-{item.end_frame} is past the last frame "
                    f"({self.n_frames - 1})"
                )
        spans = sorted((t.start_frame, t.end_frame) for t in self.transitions)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start <= end:
                raise ValueError(f"transitions overlap at frame {start}")
        return self


class _PredictionDoc(BaseModel):
    model_config = ConfigDict(extra="allow")

    transitions: list[_TransitionDoc]


@dataclass(frozen=True)
class Span:
    """A GT or predicted transition, or a hard negative: inclusive frames ``[start, end]``."""

    start_frame: int
    end_frame: int
    kind: str = "cut"
    note: str | None = None
    confidence: float = 1.0

    @property
    def is_cut(self) -> bool:
        return self.kind == "cut"

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


@dataclass(frozen=True)
class GroundTruth:
    path: Path
    film: str  # file name of the film, relative to the JSON file's folder
    fps: float
    n_frames: int
    width: int
    height: int
    transitions: tuple[Span, ...]
    hard_negatives: tuple[Span, ...] = ()
    segments: tuple[dict, ...] = ()

    @property
    def name(self) -> str:
        """The film's stem, which also names its prediction file."""
        return Path(self.film).stem

    @property
    def film_path(self) -> Path:
        return self.path.parent / self.film

    @property
    def duration_seconds(self) -> float:
        return self.n_frames / self.fps


def _order(span: Span) -> tuple[int, int, str]:
    return span.start_frame, span.end_frame, span.kind


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise GroundTruthError(f"{path}: not JSON: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _span(doc: _TransitionDoc | _NegativeDoc) -> Span:
    note = getattr(doc, "note", None)
    confidence = getattr(doc, "confidence", 1.0)
    return Span(doc.start_frame, doc.end_frame, doc.kind, note, confidence)


def load_ground_truth(path: str | Path) -> GroundTruth:
    """Read and validate one ground-truth file; errors name the file and the field."""
    path = Path(path)
    try:
        doc = _GroundTruthDoc.model_validate(_read_json(path))
    except ValidationError as exc:
        raise GroundTruthError(f"{path}: invalid ground truth: {_describe(exc)}") from exc
    return GroundTruth(
        path=path,
        film=doc.film,
        fps=doc.fps,
        n_frames=doc.n_frames,
        width=doc.width,
        height=doc.height,
        transitions=tuple(sorted((_span(t) for t in doc.transitions), key=_order)),
        hard_negatives=tuple(sorted((_span(n) for n in doc.hard_negatives), key=_order)),
        segments=tuple(doc.segments),
    )


def load_ground_truth_dir(directory: str | Path) -> list[GroundTruth]:
    """Every ``*.json`` of ``directory`` except those starting with ``_`` (set summaries)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GroundTruthError(f"{directory}: not a folder")
    paths = sorted(p for p in directory.glob("*.json") if not p.name.startswith("_"))
    if not paths:
        raise GroundTruthError(f"{directory}: no ground-truth *.json files")
    return [load_ground_truth(p) for p in paths]


def load_predictions(path: str | Path) -> list[Span]:
    """Predicted transitions from a JSON file in the ground truth's ``transitions`` format
    (a top-level list of transitions is accepted too)."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, list):
        data = {"transitions": data}
    try:
        doc = _PredictionDoc.model_validate(data)
    except ValidationError as exc:
        raise GroundTruthError(f"{path}: invalid predictions: {_describe(exc)}") from exc
    return sorted((_span(t) for t in doc.transitions), key=_order)


def predictions_document(transitions: Iterable[Transition | Span | Mapping]) -> dict:
    """The JSON document of predicted transitions (what ``load_predictions`` reads)."""
    items = []
    for span in as_spans(transitions):
        item: dict = {"kind": span.kind, "start_frame": span.start_frame}
        item |= {"end_frame": span.end_frame, "confidence": span.confidence}
        items.append(item)
    return {"schema_version": f"{SCHEMA_MAJOR}.0", "transitions": items}


def as_spans(items: Iterable[Transition | Span | Mapping]) -> list[Span]:
    """Spans from Transitions, Spans or dicts with start_frame/end_frame/kind, sorted."""
    spans = []
    for item in items:
        if isinstance(item, Span):
            spans.append(item)
        elif isinstance(item, Mapping):
            start = int(item["start_frame"])
            end = int(item.get("end_frame", start))
            spans.append(
                Span(
                    start,
                    end,
                    str(item.get("kind", "cut")),
                    item.get("note"),
                    float(item.get("confidence", 1.0)),
                )
            )
        else:
            spans.append(
                Span(
                    int(item.start_frame),
                    int(item.end_frame),
                    str(item.kind),
                    getattr(item, "note", None),
                    float(getattr(item, "confidence", 1.0)),
                )
            )
    return sorted(spans, key=_order)


# ---------------------------------------------------------------------------------------------
# Matching.


def _touches(a: Span, start: int, end: int) -> bool:
    """Whether ``a`` shares at least one frame with ``[start, end]``."""
    return a.start_frame <= end and start <= a.end_frame


def _overlap(a: Span, b: Span) -> int:
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


def _cut_score(k: int) -> Callable[[Span, Span], float | None]:
    def score(g: Span, p: Span) -> float | None:
        d = abs(g.start_frame - p.start_frame)
        return -d if d <= k else None

    return score


def _overlap_score(g: Span, p: Span) -> float | None:
    overlap = _overlap(g, p)
    return overlap if overlap > 0 else None


def _padded_score(pad: int) -> Callable[[Span, Span], float | None]:
    """Prediction touching the GT interval padded by ``pad``; prefer overlap, then nearness."""

    def score(g: Span, p: Span) -> float | None:
        if not _touches(p, g.start_frame - pad, g.end_frame + pad):
            return None
        centre = abs((g.start_frame + g.end_frame) - (p.start_frame + p.end_frame)) / 2
        return _overlap(g, p) - centre / (10 * (g.n_frames + p.n_frames + 2 * pad))

    return score


# ---------------------------------------------------------------------------------------------
# Scores.


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives, with P, R and F1 (module doc)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 1.0

    def to_dict(self) -> dict:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _sum_maps(a: Mapping, b: Mapping) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = out[key] + value if key in out else value
    return out


@dataclass(frozen=True)
class Tally:
    """Everything counted on a film or summed over a set; ratios are derived from counts."""

    n_frames: int = 0
    duration_seconds: float = 0.0
    cuts: dict[int, Counts] = field(default_factory=dict)  # by tolerance
    graduals: Counts = Counts()
    gradual_type_correct: int = 0
    gradual_overlap_frames: int = 0
    gradual_gt_frames: int = 0  # of matched pairs
    gradual_pred_frames: int = 0  # of matched pairs
    graduals_found_as_cut: int = 0
    cuts_found_as_gradual: int = 0
    transitions: Counts = Counts()  # all transitions, whatever their type
    noted: dict[str, Counts] = field(default_factory=dict)  # tp, fn of GT with a note
    negatives: dict[str, int] = field(default_factory=dict)  # hard negatives by kind
    false_on_negatives: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Tally) -> Tally:
        if self.cuts and other.cuts and set(self.cuts) != set(other.cuts):
            raise ValueError("scores with different cut tolerances cannot be added")
        return Tally(
            n_frames=self.n_frames + other.n_frames,
            duration_seconds=self.duration_seconds + other.duration_seconds,
            cuts=_sum_maps(self.cuts, other.cuts),
            graduals=self.graduals + other.graduals,
            gradual_type_correct=self.gradual_type_correct + other.gradual_type_correct,
            gradual_overlap_frames=self.gradual_overlap_frames + other.gradual_overlap_frames,
            gradual_gt_frames=self.gradual_gt_frames + other.gradual_gt_frames,
            gradual_pred_frames=self.gradual_pred_frames + other.gradual_pred_frames,
            graduals_found_as_cut=self.graduals_found_as_cut + other.graduals_found_as_cut,
            cuts_found_as_gradual=self.cuts_found_as_gradual + other.cuts_found_as_gradual,
            transitions=self.transitions + other.transitions,
            noted=_sum_maps(self.noted, other.noted),
            negatives=_sum_maps(self.negatives, other.negatives),
            false_on_negatives=_sum_maps(self.false_on_negatives, other.false_on_negatives),
        )

    @property
    def gt_cuts(self) -> int:
        counts = next(iter(self.cuts.values()), Counts())
        return counts.tp + counts.fn

    @property
    def gt_graduals(self) -> int:
        return self.graduals.tp + self.graduals.fn

    @property
    def type_accuracy(self) -> float | None:
        return _ratio(self.gradual_type_correct, self.graduals.tp)

    @property
    def gradual_frame_recall(self) -> float | None:
        return _ratio(self.gradual_overlap_frames, self.gradual_gt_frames)

    @property
    def gradual_frame_precision(self) -> float | None:
        return _ratio(self.gradual_overlap_frames, self.gradual_pred_frames)

    def false_per_ten(self, kind: str) -> float | None:
        """False cuts per ten hard negatives of ``kind`` (None when there are none)."""
        return _ratio(10 * self.false_on_negatives.get(kind, 0), self.negatives.get(kind, 0))

    def noted_recall(self, note: str) -> float | None:
        counts = self.noted.get(note)
        return counts.recall if counts and counts.tp + counts.fn else None

    def to_dict(self) -> dict:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return {
            "n_frames": self.n_frames,
            "duration_seconds": round(self.duration_seconds, 3),
            "cuts": {str(k): c.to_dict() for k, c in sorted(self.cuts.items())},
            "graduals": self.graduals.to_dict()
            | {
                "type_accuracy": rounded(self.type_accuracy),
                "frame_recall": rounded(self.gradual_frame_recall),
                "frame_precision": rounded(self.gradual_frame_precision),
                "found_as_cut": self.graduals_found_as_cut,
            },
            "cuts_found_as_gradual": self.cuts_found_as_gradual,
            "all_transitions": self.transitions.to_dict(),
            "noted": {
                note: {"found": c.tp, "total": c.tp + c.fn, "recall": rounded(c.recall)}
                for note, c in sorted(self.noted.items())
            },
            "hard_negatives": {
                kind: {
                    "count": n,
                    "false_cuts": self.false_on_negatives.get(kind, 0),
                    "per_ten": rounded(self.false_per_ten(kind)),
                }
                for kind, n in sorted(self.negatives.items())
            },
        }


@dataclass(frozen=True)
class FilmScore(Tally):
    film: str = ""

    def to_dict(self) -> dict:
        return {"film": self.film, **super().to_dict()}


@dataclass(frozen=True)
class SetScore(Tally):
    n_films: int = 0

    def to_dict(self) -> dict:
        return {"n_films": self.n_films, **super().to_dict()}


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

    grad_pairs = match(gt_grads, p_grads, _overlap_score)
    cut_pairs = {k: match(gt_cuts, p_cuts, _cut_score(k)) for k in sorted(set(tolerances))}
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
    all_pairs = match(gt, pred, _padded_score(PAD))
    neg_kinds = Counter(n.kind for n in negatives)
    return FilmScore(
        film=film,
        n_frames=n_frames,
        duration_seconds=n_frames / fps if fps else 0.0,
        cuts=cuts,
        graduals=Counts(len(grad_pairs), grad_fp, len(gt_grads) - len(grad_pairs)),
        gradual_type_correct=sum(gt_grads[i].kind == p_grads[j].kind for i, j in grad_pairs),
        gradual_overlap_frames=sum(_overlap(gt_grads[i], p_grads[j]) for i, j in grad_pairs),
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
    pairs = match([gt_grads[i] for i in missed], [p_cuts[j] for j in spare], _padded_score(PAD))
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
        if j not in matched and not any(_overlap(p, g) for g in gt_grads)
    ]
    pairs = match([gt_cuts[i] for i in missed], [p_grads[j] for j in spare], _padded_score(PAD))
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
    return sum(1 for p in pred if any(_touches(p, a, b) for a, b in zones))


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


def aggregate(scores: Iterable[FilmScore]) -> SetScore:
    """Micro-average: counts summed over films (ratios come from the sums)."""
    total, n = Tally(), 0
    for score in scores:
        total, n = total + score, n + 1
    fields = {name: getattr(total, name) for name in Tally.__dataclass_fields__}
    return SetScore(**fields, n_films=n)


# ---------------------------------------------------------------------------------------------
# Report.

_COLUMNS = (
    "detector",
    "cut F1 ±0",
    "cut F1 ±1",
    "cut F1 ±2",
    "cut P ±1",
    "cut R ±1",
    "gradual F1",
    "gradual P",
    "gradual R",
    "type acc.",
    "found as cut",
    "all F1 ±2",
    "false /10 flashes",
    "false /10 whip-pans",
    "same-loc. R",
    "seconds",
    "frames/s",
)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _cut(score: SetScore, k: int, what: str) -> str:
    counts = score.cuts.get(k)
    return _num(getattr(counts, what)) if counts else "-"


def _seconds(speeds: Mapping | None, name: str) -> float | None:
    if not speeds or name not in speeds:
        return None
    value = speeds[name]
    if isinstance(value, Mapping):
        value = value.get("seconds")
    return None if value is None else float(value)


def format_markdown(results: Mapping[str, SetScore], speeds: Mapping | None = None) -> str:
    """A Markdown table, one row per detector. ``speeds`` maps a detector to its processing
    seconds over the whole set (a number, or a mapping with ``seconds``)."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for name, s in results.items():
        seconds = _seconds(speeds, name)
        fps = s.n_frames / seconds if seconds else None
        gradual_found = f"{s.graduals_found_as_cut}/{s.gt_graduals}"
        cells = [
            name,
            _cut(s, 0, "f1"),
            _cut(s, 1, "f1"),
            _cut(s, 2, "f1"),
            _cut(s, 1, "precision"),
            _cut(s, 1, "recall"),
            _num(s.graduals.f1),
            _num(s.graduals.precision),
            _num(s.graduals.recall),
            _num(s.type_accuracy),
            gradual_found,
            _num(s.transitions.f1),
            _num(s.false_per_ten("flash"), 2),
            _num(s.false_per_ten("whip_pan"), 2),
            _num(s.noted_recall("same_location")),
            _num(seconds, 1),
            _num(fps, 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if results:
        gt = next(iter(results.values()))
        lines.append("")
        lines.append(
            f"{gt.n_films} films, {gt.n_frames} frames ({gt.duration_seconds / 60:.1f} min); "
            f"ground truth: {gt.gt_cuts} cuts, {gt.gt_graduals} gradual transitions, "
            f"{gt.negatives.get('flash', 0)} flashes, {gt.negatives.get('whip_pan', 0)} "
            "whip-pans. Cut tolerances in frames; columns defined in docs/sbd-benchmark.md."
        )
    return "\n".join(lines) + "\n"
