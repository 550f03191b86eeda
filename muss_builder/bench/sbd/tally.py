"""Counts of one film or a set: TP, FP, FN and the ratios derived from them (conventions:
``scoring.py``); sums of films are micro-averages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


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


def aggregate(scores: Iterable[FilmScore]) -> SetScore:
    """Micro-average: counts summed over films (ratios come from the sums)."""
    total, n = Tally(), 0
    for score in scores:
        total, n = total + score, n + 1
    fields = {name: getattr(total, name) for name in Tally.__dataclass_fields__}
    return SetScore(**fields, n_films=n)


# ---------------------------------------------------------------------------------------------
# Report.
