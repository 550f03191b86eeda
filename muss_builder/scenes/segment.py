"""Scene segmentation: which consecutive shots form one scene, and the evidence for each break.

The method is the overlapping-links rule of the shot-similarity-graph family (Hanjalic et al.'s
"logical story units", Rasheed & Shah's shot similarity graph), reduced to what the pipeline
measures anyway:

- every pair of shots ``i < b <= j`` no more than ``link_shots`` apart and ``link_seconds``
  apart *links across* the boundary before shot ``b`` with a strength: the similarity of
  their colour histograms (``looks.py``), plus ``subject_bonus`` when a film subject (a face
  identity) is in both. An exchange A-B-A-B links every other shot, so no boundary inside it
  is crossed by nothing; an establishing shot links to the coverage that follows in its place;
- a **cut** is a scene break when no link across it reaches ``link_similarity``: nothing on
  the other side looks like this side;
- a **gradual transition** (a fade through black or white, a dissolve, a wipe: films use them
  to pass time or change place) is a break unless a link across it is nearly the same picture
  (``gradual_keeps_similarity``: a fade out and in on the same set-up);
- the film's first shot opens the first scene.

Every boundary keeps its evidence (the best link, the shots that gave it, the transition, the
subjects shared), so a user can see why a break is or is not there and retune.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from muss_builder.config import ScenesConfig
from muss_builder.scenes.looks import similarity
from muss_builder.shots.segment import Shot

GRADUAL = ("fade_black", "fade_white", "dissolve", "wipe", "gradual")


@dataclass(frozen=True)
class Boundary:
    """The evidence at the boundary before shot ``shot`` (the first shot after it)."""

    shot: int
    transition: str  # the shot's transition_in
    link: float  # the strongest link across the boundary (0 when none is in reach)
    linked: tuple[int, int] | None  # the shots that gave it
    shared_subjects: tuple[str, ...]  # subjects of that pair found on both sides
    is_break: bool
    reason: str  # why it is (or is not) a break, in words

    def to_dict(self) -> dict:
        return {
            "shot": self.shot,
            "transition": self.transition,
            "link": round(self.link, 4),
            "linked": list(self.linked) if self.linked else [],
            "shared_subjects": list(self.shared_subjects),
            "is_break": self.is_break,
            "reason": self.reason,
        }


@dataclass
class Scene:
    index: int
    first_shot: int
    last_shot: int  # inclusive
    boundary: Boundary | None = None  # the break that opened it (None for the first scene)
    shots: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "first_shot": self.first_shot,
            "last_shot": self.last_shot,
            "opened_by": self.boundary.to_dict() if self.boundary else None,
        }


def _best_link(
    b: int,
    shots: Sequence[Shot],
    looks: Mapping[int, np.ndarray],
    subjects: Mapping[int, frozenset[str]],
    cfg: ScenesConfig,
) -> tuple[float, tuple[int, int] | None, tuple[str, ...]]:
    best, pair, shared_best = 0.0, None, ()
    for i in range(max(0, b - cfg.link_shots), b):
        for j in range(b, min(len(shots), i + cfg.link_shots + 1)):
            if shots[j].start_seconds - shots[i].end_seconds > cfg.link_seconds:
                continue
            a, c = looks.get(shots[i].index), looks.get(shots[j].index)
            strength = similarity(a, c) if a is not None and c is not None else 0.0
            shared = subjects.get(shots[i].index, frozenset()) & subjects.get(
                shots[j].index, frozenset()
            )
            if shared:
                strength += cfg.subject_bonus
            if strength > best:
                best, pair, shared_best = strength, (shots[i].index, shots[j].index), shared
    return best, pair, tuple(sorted(shared_best))


def judge_boundary(
    b: int,
    shots: Sequence[Shot],
    looks: Mapping[int, np.ndarray],
    subjects: Mapping[int, frozenset[str]],
    cfg: ScenesConfig,
) -> Boundary:
    """The evidence at the boundary before ``shots[b]`` and whether it is a scene break."""
    link, pair, shared = _best_link(b, shots, looks, subjects, cfg)
    transition = shots[b].transition_in
    if transition in GRADUAL:
        is_break = link < cfg.gradual_keeps_similarity
        reason = (
            f"{transition}, best link {link:.2f} < {cfg.gradual_keeps_similarity}"
            if is_break
            else f"{transition} inside one set-up (link {link:.2f})"
        )
    else:
        is_break = link < cfg.link_similarity
        reason = (
            f"no shot across looks alike (best link {link:.2f} < {cfg.link_similarity})"
            if is_break
            else f"linked across (shots {pair[0]} and {pair[1]}: {link:.2f})"
            if pair
            else "linked"
        )
    return Boundary(shots[b].index, transition, link, pair, shared, is_break, reason)


def segment_scenes(
    shots: Sequence[Shot],
    looks: Mapping[int, np.ndarray],
    subjects: Mapping[int, frozenset[str]] | None = None,
    cfg: ScenesConfig | None = None,
) -> tuple[list[Scene], list[Boundary]]:
    """Scenes over ``shots`` (in film order) and the evidence at every boundary. ``looks``:
    shot index -> colour histogram; ``subjects``: shot index -> film subject ids in it."""
    cfg = cfg or ScenesConfig()
    subjects = subjects or {}
    if not shots:
        return [], []
    boundaries = [judge_boundary(b, shots, looks, subjects, cfg) for b in range(1, len(shots))]
    scenes = [Scene(0, shots[0].index, shots[0].index, None, [shots[0].index])]
    for b, boundary in zip(range(1, len(shots)), boundaries, strict=True):
        shot = shots[b].index
        if boundary.is_break and cfg.enabled:
            scenes.append(Scene(len(scenes), shot, shot, boundary, [shot]))
        else:
            scenes[-1].last_shot = shot
            scenes[-1].shots.append(shot)
    return scenes, boundaries


def scene_of_shots(scenes: Sequence[Scene]) -> dict[int, int]:
    """Shot index -> scene index."""
    return {shot: scene.index for scene in scenes for shot in scene.shots}


def break_f1(predicted: Sequence[int], truth: Sequence[int]) -> dict[str, float]:
    """Precision, recall and F1 of scene breaks, each named by the first shot after it."""
    p, t = set(predicted), set(truth)
    hit = len(p & t)
    precision = hit / len(p) if p else (1.0 if not t else 0.0)
    recall = hit / len(t) if t else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted": len(p), "true": len(t)}
