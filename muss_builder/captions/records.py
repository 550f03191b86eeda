"""Typed caption records: the measured facts of a shot, a window's captions, and the caption
parts of a sample (``schemas/sample.schema.json``: ``shots[].facts``, ``caption_issues``,
``captioner``).

The facts parts are ``Open``: the schema lists the keys it requires and lets others through
(the camera's per-axis rates ride along), so a record read back keeps them, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from muss_builder.captions.camera import CAMERA_KINDS
from muss_builder.captions.captioner import Caption
from muss_builder.captions.facts import SCALES
from muss_builder.core.fields import (
    Box,
    Closed,
    NonNegativeInt,
    Number,
    Open,
    SubjectId,
    absent,
)

Scale = Literal[SCALES]  # type: ignore[valid-type]
CameraKind = Literal[CAMERA_KINDS]  # type: ignore[valid-type]
# "none": captions were off (the sample's captioner is always an object, issue 17)
CaptionBackend = Literal["none", "facts", "transformers", "openai"]
CaptionSource = Literal["facts", "model", "facts-fallback"]


class FactCamera(Open):
    """How the camera moves (``captions.camera.CameraMotion``, rounded)."""

    kind: CameraKind
    magnitude: Number


class FactLighting(Open):
    """Light and colour of the shot (``captions.lighting.Lighting``, rounded)."""

    brightness: Number
    contrast: Number
    saturation: Number = absent()
    colour: StrictStr
    key: StrictStr
    time_of_day: StrictStr


class FactSubject(Open):
    """A subject of the shot at its largest box."""

    id: SubjectId
    kind: StrictStr
    box: Box


class ShotFacts(Open):
    """What was measured about one shot, with no language model: what its captions stand on."""

    scale: Scale
    scale_basis: StrictStr
    camera: FactCamera | None
    lighting: FactLighting | None
    n_people: NonNegativeInt
    subjects: list[FactSubject]
    transition_in: StrictStr
    # the shot's scene in its film (``scenes.segment``; -1 when scenes are off): a sample whose
    # shots are in two scenes crosses a change of place or time, and its captions say so
    scene: Annotated[StrictInt, Field(ge=-1)] = -1


GLOBAL_CAPTION_SHOT = -1  # CaptionIssue.shot of the global caption (an integer in every issue)


class CaptionIssue(Closed):
    """What the consistency check still found after the re-asks; shot -1 = the global caption
    (not null: every sample keeps one type per field, issue 17)."""

    shot: Annotated[StrictInt, Field(ge=GLOBAL_CAPTION_SHOT)]
    issue: StrictStr


class CaptionerInfo(Open):
    """Who wrote a sample's captions. Sources: 'facts' = sentences written from the measured
    facts, 'model' = the backend's model, 'facts-fallback' = the model failed."""

    backend: CaptionBackend
    model: StrictStr  # "" when the backend has no model (facts, none)
    sources: list[CaptionSource]
    attempts: NonNegativeInt  # 0 when captions were off


@dataclass
class WindowCaptions:
    """The captions of one sample window: its shots' facts and captions, and the global one."""

    facts: list[ShotFacts]
    shots: list[Caption]
    global_caption: Caption

    def issues(self) -> list[CaptionIssue]:
        found = [
            CaptionIssue(shot=i, issue=issue)
            for i, caption in enumerate(self.shots)
            for issue in caption.issues
        ]
        issues = self.global_caption.issues
        return found + [CaptionIssue(shot=GLOBAL_CAPTION_SHOT, issue=i) for i in issues]

    def sources(self) -> list[str]:
        return sorted({c.source for c in [*self.shots, self.global_caption]})

    def attempts(self) -> int:
        return max(c.attempts for c in [*self.shots, self.global_caption])


@dataclass
class FilmCaptions:
    """Every window's captions (None each when captions are off) and the captioner's counters."""

    windows: list[WindowCaptions | None]
    stats: dict | None = None
