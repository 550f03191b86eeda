"""Ground truth and predictions of shot-boundary detection: the JSON documents, read and
checked, as ``Span`` lists in frame indices of decoded frames (scored in ``scoring.py``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from muss_builder.shots.transitions import Transition, TransitionKind

SCHEMA_MAJOR = "1"


class GroundTruthError(ValueError):
    """A ground-truth or prediction file is unreadable or invalid; the message names it."""


# ---------------------------------------------------------------------------------------------
# File format (benchmarks/sbd/README.md).


class _TransitionDoc(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: TransitionKind
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
