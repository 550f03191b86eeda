"""The sample record: the ``.json`` member of every shard sample (``schemas/sample.schema.json``).

``Sample`` mirrors the published schema field for field (the schema stays hand-written: users
validate against it, and ``tests/samples/test_records.py`` checks that the two accept the same
records). A sample is built whole by ``samples.metadata`` once its clip and captions exist, and
written by ``Sample.to_json_bytes`` with the same ``json.dumps`` call as ever.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, StrictStr, ValidationError

from muss_builder.captions.records import CaptionerInfo, CaptionIssue, ShotFacts
from muss_builder.core.fields import (
    Bool,
    Box,
    Closed,
    FilmId,
    Fraction,
    FramePair,
    NonNegativeInt,
    NonNegativeNumber,
    Number,
    PixelBox,
    PositiveInt,
    PositiveNumber,
    SampleKey,
    SubjectId,
    absent,
)

Track = Literal["montage", "subject"]
SubjectKind = Literal["face", "object"]
ShotTransition = Literal["start", "cut", "dissolve", "fade_black", "fade_white", "wipe", "gradual"]
EvenSide = Annotated[PositiveInt, Field(ge=2, multiple_of=2)]


class Source(Closed):
    file_name: StrictStr
    fps: PositiveNumber
    width: PositiveInt
    height: PositiveInt
    n_frames: PositiveInt
    variable_frame_rate: Bool


class Span(Closed):
    """The sample's extent in the source film; end is exclusive."""

    start_frame: NonNegativeInt
    end_frame: PositiveInt
    start_seconds: NonNegativeNumber
    end_seconds: NonNegativeNumber


class ClipInfo(Closed):
    fps: PositiveNumber
    width: EvenSide
    height: EvenSide
    n_frames: PositiveInt
    duration_seconds: PositiveNumber
    codec: Literal["h264"]
    pix_fmt: Literal["yuv420p"]


class SubjectBox(Closed):
    source_frame: NonNegativeInt
    clip_frame: NonNegativeInt
    box: Box


class ShotSubject(Closed):
    """A subject seen on a shot's keyframes, with its boxes."""

    id: SubjectId
    kind: SubjectKind
    label: StrictStr
    boxes: Annotated[list[SubjectBox], Field(min_length=1)]


class SampleShot(Closed):
    """One shot of a sample, in clip frames, source frames and seconds."""

    film_shot_index: NonNegativeInt
    source_start_frame: NonNegativeInt
    source_end_frame: PositiveInt
    start_seconds: NonNegativeNumber
    end_seconds: NonNegativeNumber
    clip_start_frame: NonNegativeInt
    clip_end_frame: PositiveInt
    clip_start_seconds: NonNegativeNumber
    clip_end_seconds: NonNegativeNumber
    transition_in: ShotTransition  # the first shot of a sample is 'start'
    transition_in_frames: FramePair | None  # source frames [first, last]; None for a cut
    transition_in_clip_frames: FramePair | None  # clip frames showing it; None for a cut
    caption: StrictStr | None
    facts: ShotFacts | None
    subjects: list[ShotSubject]


class Reference(Closed):
    """A reference crop (member ``ref{k}.jpg``) of the subject track, with its provenance."""

    member: Annotated[StrictStr, Field(pattern=r"^ref[0-9]+\.jpg$")]
    subject: SubjectId
    kind: SubjectKind
    label: StrictStr
    source_shot: NonNegativeInt  # film shot the crop was cut from
    source_frame: NonNegativeInt
    box: Box
    target_shots: Annotated[list[NonNegativeInt], Field(min_length=1)]  # never source_shot
    identity_similarity: Number
    pose_delta: Number | None  # degrees; None for objects
    duplicate_correlation: Number
    quality: Fraction
    fallback: Bool  # the crop comes from another shot of this sample: none elsewhere


class SamplePipeline(Closed):
    name: StrictStr
    config_hash: StrictStr
    version: StrictStr
    shot_detector: StrictStr


class Sample(Closed):
    """Metadata of one sample (montage, or its subject-track twin with reference crops)."""

    schema_version: Literal["1.0"]
    key: SampleKey
    film_id: FilmId
    track: Track
    source: Source
    span: Span
    clip: ClipInfo
    # the active picture the clip shows (source pixels); absent from samples before issue 16
    crop: PixelBox = absent()
    shots: Annotated[list[SampleShot], Field(min_length=1)]
    n_shots: PositiveInt
    duration_seconds: PositiveNumber
    subjects: list[SubjectId]
    focus_subject: SubjectId | None  # the subject a subject-track sample centres on
    references: list[Reference]
    global_caption: StrictStr | None
    prompt: StrictStr | None  # the global caption, then one '[shot i] caption' line per shot
    caption_issues: list[CaptionIssue]
    captioner: CaptionerInfo | None
    pipeline: SamplePipeline

    def to_json_bytes(self) -> bytes:
        """The shard member's bytes (sorted keys, as every sample has been written)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()


def validation_reason(exc: ValidationError) -> str:
    """A pydantic error as one line per problem, 'path: message' like the schema check's."""
    lines = []
    for error in exc.errors(include_url=False):
        where = "/".join(str(p) for p in error["loc"]) or "<root>"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)
