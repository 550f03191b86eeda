"""The sample record: the ``.json`` member of every shard sample (``schemas/sample.schema.json``).

Schema 2.0 (issue 17, docs/layout.md): one sample per window serves both tracks (``tracks``),
its reference crops live in one ``refs.jpg`` strip, and every field keeps one JSON type in
every sample (empty strings, empty lists or "unknown" objects where 1.0 had null), so readers
that infer one schema from the first samples (Arrow, Hugging Face, Ray) see one.

``Sample`` mirrors the published schema field for field (the schema stays hand-written: users
validate against it, and ``tests/samples/test_records.py`` checks that the two accept the same
records). A sample is built whole by ``samples.metadata`` once its clip and captions exist, and
written by ``Sample.to_json_bytes`` with the same ``json.dumps`` call as ever.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, StrictStr, ValidationError, field_validator

from muss_builder.captions.records import (
    CameraKind,
    CaptionerInfo,
    CaptionIssue,
    FactCamera,
    FactLighting,
    ShotFacts,
)
from muss_builder.core.fields import (
    Bool,
    Box,
    Closed,
    FilmId,
    Fraction,
    NonNegativeInt,
    NonNegativeNumber,
    Number,
    PixelBox,
    PositiveInt,
    PositiveNumber,
    SampleKey,
    SubjectId,
)

Track = Literal["montage", "subject"]
SubjectKind = Literal["face", "object"]
ShotTransition = Literal["start", "cut", "dissolve", "fade_black", "fade_white", "wipe", "gradual"]
EvenSide = Annotated[PositiveInt, Field(ge=2, multiple_of=2)]
# [first, last] frames of a gradual transition; [] for a cut (a list either way: one type)
TransitionFrames = Annotated[list[NonNegativeInt], Field(max_length=2)]
StripBox = Annotated[list[NonNegativeInt], Field(min_length=4, max_length=4)]
"""x0, y0, x1, y1 of a reference crop in the ``refs.jpg`` strip, pixels, end exclusive."""
NO_POSE_DELTA = -1.0  # Reference.pose_delta of an object: no head pose to compare


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


class SampleCamera(FactCamera):
    """The camera facts of a sample's shot: kind "unknown" (zeros) when not measured. The
    per-axis rates are declared (and required) here: every key a sample carries is in the
    schema and the model, so the dataset card's features (``report.card_features``) cover it."""

    kind: CameraKind | Literal["unknown"]
    dx_per_second: Number
    dy_per_second: Number
    zoom_per_second: Number


class SampleLighting(FactLighting):
    """The lighting facts of a sample's shot: "unknown" words (zeros) when not measured."""

    saturation: Number


class SampleFacts(ShotFacts):
    """A shot's facts as a sample stores them: camera and lighting always objects (issue 17;
    ``samples.metadata.sample_facts`` fills "unknown" ones where nothing was measured)."""

    camera: SampleCamera
    lighting: SampleLighting


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
    transition_in_frames: TransitionFrames  # source frames [first, last]; [] for a cut
    transition_in_clip_frames: TransitionFrames  # clip frames showing it; [] for a cut
    caption: StrictStr  # "" when captions are off
    facts: SampleFacts
    subjects: list[ShotSubject]

    @field_validator("transition_in_frames", "transition_in_clip_frames")
    @classmethod
    def _pair_or_empty(cls, value: list[int]) -> list[int]:
        if len(value) == 1:  # the schema says the same: not exactly one item
            raise ValueError("a transition's frames are [first, last], or [] for a cut")
        return value


class Reference(Closed):
    """A reference crop of the subject track (its place in the ``refs.jpg`` strip), with its
    provenance."""

    strip_box: StripBox
    subject: SubjectId
    kind: SubjectKind
    label: StrictStr
    source_shot: NonNegativeInt  # film shot the crop was cut from
    source_frame: NonNegativeInt
    box: Box
    target_shots: Annotated[list[NonNegativeInt], Field(min_length=1)]  # never source_shot
    identity_similarity: Number
    pose_delta: Annotated[Number, Field(ge=NO_POSE_DELTA)]  # degrees; NO_POSE_DELTA: objects
    duplicate_correlation: Number
    quality: Fraction
    fallback: Bool  # the crop comes from another shot of this sample: none elsewhere


WindowKind = Literal["scene", "cross_scene", "subject"]
WindowPoint = Literal[
    "film_edge", "scene_edge", "exchange_edge", "run_edge", "limit", "subject_edge"
]


class SampleWindow(Closed):
    """Why the sample holds these shots (``samples.windows``, ``samples.subject_windows``)."""

    kind: WindowKind  # montage in one scene, montage over a scene break, or around a subject
    scenes: list[NonNegativeInt]  # the scenes its shots are in; [] when scenes are off
    start_point: WindowPoint  # what its first shot is: a film/scene/exchange start, ...
    end_point: WindowPoint  # what its last shot is: the end of the film/scene/exchange, ...
    subject: StrictStr  # the subject a "subject" window was chosen around; "" otherwise
    reason: StrictStr  # the same, in words
    # per shot: how many samples of the film hold it (1 unless windows overlap:
    # ``samples.lengths``, subject windows; at most ``samples.max_shot_uses``)
    shot_uses: list[PositiveInt]


class SamplePipeline(Closed):
    name: StrictStr
    config_hash: StrictStr
    version: StrictStr
    shot_detector: StrictStr


class Sample(Closed):
    """Metadata of one sample: one window's clip, serving the montage track and, when it has
    references, the subject track too (``tracks``)."""

    schema_version: Literal["2.1"]
    key: SampleKey
    film_id: FilmId
    # ["montage"] or ["montage", "subject"]; ["subject"] for a window chosen around a subject
    tracks: Annotated[list[Track], Field(min_length=1)]
    window: SampleWindow
    source: Source
    span: Span
    clip: ClipInfo
    # the active picture the clip shows (source pixels; the whole frame when filters are off)
    crop: PixelBox
    shots: Annotated[list[SampleShot], Field(min_length=1)]
    n_shots: PositiveInt
    duration_seconds: PositiveNumber
    subjects: list[SubjectId]
    # the subjects the subject view centres on, main focus first; [] when montage only
    focus_subjects: list[SubjectId]
    references: list[Reference]  # in ``refs.jpg`` strip order; [] when montage only
    global_caption: StrictStr  # "" when captions are off
    prompt: StrictStr  # the global caption, then one '[shot i] caption' line per shot; or ""
    caption_issues: list[CaptionIssue]
    captioner: CaptionerInfo  # backend "none" when captions are off
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
