"""Transitions between shots: hard cuts and typed gradual transitions, in frame indices."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

TransitionKind = Literal["cut", "dissolve", "fade_black", "fade_white", "wipe", "gradual"]


@dataclass(frozen=True, order=True)
class Transition:
    """A change of shot.

    For a cut, ``start_frame == end_frame`` is the first frame of the new shot. For a gradual
    transition, ``[start_frame, end_frame]`` (inclusive) are the frames that mix both shots
    (or show the black/white of a fade); ``gradual`` means "gradual, type unknown".
    """

    start_frame: int
    end_frame: int
    kind: TransitionKind = "cut"
    confidence: float = 1.0

    @property
    def is_cut(self) -> bool:
        return self.kind == "cut"

    @property
    def boundary(self) -> int:
        """First frame of the new shot: the cut frame, or the middle of a gradual transition."""
        if self.is_cut:
            return self.start_frame
        return (self.start_frame + self.end_frame + 1) // 2

    def to_dict(self) -> dict:
        return asdict(self)


def cut(frame: int, confidence: float = 1.0) -> Transition:
    return Transition(frame, frame, "cut", confidence)
