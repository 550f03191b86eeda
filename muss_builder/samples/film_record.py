"""The film record, ``films/{film_id}.json`` (``schemas/film.schema.json``): every shot,
transition, subject, sample and shard of one film. Written last, it marks the film complete.

``FilmRecord`` mirrors the published schema: the fields the schema requires are required, the
ones it lets a record leave out are ``absent()`` (left out of the dump unless given), and the
parts the schema leaves open keep other keys. Fields are declared in the order the record has
always been written, so ``to_json_bytes`` gives the same bytes as the dicts it replaced.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StrictStr

from muss_builder import SCHEMA_VERSION, __version__
from muss_builder.config import PipelineConfig
from muss_builder.core.fields import (
    Bool,
    Closed,
    FilmId,
    NonNegativeInt,
    Number,
    Open,
    PixelBox,
    PositiveInt,
    SampleKey,
    absent,
)
from muss_builder.determinism import determinism_mode
from muss_builder.media.probe import FilmProbe
from muss_builder.samples.verdicts import FilmCuration
from muss_builder.samples.windows import WindowPlan
from muss_builder.shots.segment import ShotDetection
from muss_builder.subjects.stage import FilmSubjects

SubjectKind = Literal["face", "object"]
FilmTransitionKind = Literal["cut", "dissolve", "fade_black", "fade_white", "wipe", "gradual"]
Determinism = Literal["bitexact-cpu", "gpu-nondeterministic", "model-nondeterministic"]


class ShotDuplicateOf(Closed):
    """The shot (of this film or an earlier one of the build) whose footage a shot repeats."""

    film_id: FilmId
    shot: NonNegativeInt


class FilmDuplicateOf(Closed):
    """The earlier input a whole film repeats (another rip, resolution or bitrate)."""

    film_id: FilmId


class Watermark(Closed):
    """A logo or watermark that stays on screen across shots, and how clips lose it."""

    box: PixelBox  # source pixels
    score: Annotated[Number, Field(ge=0, le=1)]
    removal: Literal["delogo", "crop", "none"]


class Curation(Closed):
    """The film's funnel: shots in, kept, dropped by reason, and filters that did not run."""

    shots_in: NonNegativeInt
    shots_kept: NonNegativeInt
    dropped: dict[str, NonNegativeInt]  # dropping flag -> shots it removed
    not_run: dict[str, StrictStr]  # filter -> why it did not run (a model the profile lacks)


class FilmDetection(Open):
    """A face or object on a keyframe; subject None = the unknown bucket."""

    frame: StrictInt
    kind: SubjectKind
    label: StrictStr
    subject: StrictStr | None
    box: Annotated[list[Number], Field(min_length=4, max_length=4)]
    score: Number
    size_px: Number = absent()
    sharpness: Number = absent()
    touches_edge: Bool = absent()
    keypoints: list[list[Number]] = absent()
    pose: dict[str, Number] = absent()


class FilmShot(Open):
    """One shot of the film, with the sample it went into or why it was left out."""

    index: NonNegativeInt
    start_frame: NonNegativeInt
    end_frame: PositiveInt
    start_seconds: Number
    end_seconds: Number
    transition_in: StrictStr
    transition_in_frames: list[StrictInt] | None = absent()
    n_frames: PositiveInt = absent()
    duration_seconds: Number = absent()
    sample_key: StrictStr | None  # the first sample holding it
    sample_keys: list[StrictStr] = absent()  # every sample holding it (windows may overlap)
    excluded_reason: StrictStr | None
    keyframes: list[NonNegativeInt] = absent()  # source frames the subject stage looked at
    subjects: list[StrictStr] = absent()
    detections: list[FilmDetection] = absent()
    # curation (issue 16): absent from records written before it
    crop: PixelBox = absent()  # the shot's active picture, source pixels
    quality: dict[str, Number] = absent()  # every measurement, whether or not a flag fired
    flags: list[StrictStr] = absent()  # sorted: every flag found, dropping or informational
    duplicate_of: ShotDuplicateOf | None = absent()
    scene: NonNegativeInt = absent()  # the scene the shot is in (absent when scenes are off)


class SceneBoundary(Closed):
    """The evidence at a scene's opening boundary (``scenes.segment.Boundary``)."""

    shot: NonNegativeInt
    transition: StrictStr
    link: Number
    linked: list[NonNegativeInt]
    shared_subjects: list[StrictStr]
    is_break: Bool
    reason: StrictStr


class FilmScene(Closed):
    index: NonNegativeInt
    first_shot: NonNegativeInt
    last_shot: NonNegativeInt
    opened_by: SceneBoundary | None  # None for the film's first scene


class FilmTransition(Open):
    """A cut (start_frame == end_frame = first frame of the new shot) or a gradual one."""

    start_frame: NonNegativeInt
    end_frame: NonNegativeInt
    kind: FilmTransitionKind
    confidence: Number


class Letterbox(Open):
    """Dark bars (source pixels) that stayed black in every frame."""

    top: NonNegativeInt = absent()
    bottom: NonNegativeInt = absent()
    left: NonNegativeInt = absent()
    right: NonNegativeInt = absent()


class FilmSubject(Open):
    """A film subject: faces S1.., objects O1.., numbered by first appearance."""

    id: StrictStr
    kind: StrictStr
    label: StrictStr
    n_detections: StrictInt
    shots: list[StrictInt]


class IndexRow(Open):
    """A sample's ``index.parquet`` row (``schemas/tables.json``), also listed in the record."""

    key: SampleKey
    film_id: StrictStr = absent()
    shard: StrictStr
    track: StrictStr = absent()
    window_kind: StrictStr = absent()  # the sample's window.kind (scene, cross_scene, subject)
    n_shots: Any
    duration_seconds: Any
    clip_frames: StrictInt = absent()
    clip_fps: Number = absent()
    clip_width: StrictInt = absent()
    clip_height: StrictInt = absent()
    source_file: StrictStr = absent()
    source_start_frame: StrictInt = absent()
    source_end_frame: StrictInt = absent()
    shot_durations: list[Number] = absent()
    subjects: list[StrictStr] = absent()
    n_refs: StrictInt = absent()
    global_caption_chars: StrictInt = absent()
    shot_caption_chars: list[StrictInt] = absent()
    clip_bytes: StrictInt = absent()
    crop: list[StrictInt] = absent()  # the sample's active picture, source pixels
    # then worst_{measure} and mean_{measure} of its shots, one pair per curation measure
    # (``schemas/tables.json``; null where not measured), kept as the record's extra keys


class DroppedSample(Open):
    """A window that got no sample, and why."""

    first_shot: Any
    last_shot: Any
    reason: Any


class ShardRecord(Open):
    name: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{16}-[0-9]{5}\.tar$")]
    n_samples: PositiveInt
    size_bytes: PositiveInt
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    keys: list[StrictStr]


class FilmRecord(Closed):
    """``films/{film_id}.json``: the whole film."""

    schema_version: Literal["2.1"]
    film_id: FilmId
    status: Literal["ok", "skipped", "duplicate"]
    reason: StrictStr | None
    duplicate_of: FilmDuplicateOf | None = absent()
    probe: FilmProbe
    n_frames: PositiveInt = absent()
    shot_detector: StrictStr = absent()
    transitions: list[FilmTransition] = absent()
    letterbox: Letterbox | None = absent()
    crop: PixelBox = absent()  # the film's active picture (the box of the most footage)
    watermark: Watermark | None = absent()
    shots: list[FilmShot]
    subjects: list[FilmSubject] = absent()
    scenes: list[FilmScene] = absent()  # absent when scenes are off (and before issue 19)
    subject_stage: dict[str, Any] | None = absent()
    captions: dict[str, Any] | None = absent()  # the captioner's counters for this film
    samples: list[IndexRow]
    dropped_samples: list[DroppedSample] = absent()
    excluded_shots: dict[str, StrictStr]
    curation: Curation = absent()
    shards: list[ShardRecord]
    warnings: list[StrictStr]
    timings: dict[str, Number] = absent()
    determinism: Determinism = absent()
    pipeline: dict[str, Any]

    def to_json_bytes(self) -> bytes:
        """The record's bytes (indented, in field order, as every record has been written)."""
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n").encode()


def _film_shots(
    detection: ShotDetection,
    plan: WindowPlan,
    subjects: FilmSubjects | None,
    shot_sample: dict[int, list[str]],
    curation: FilmCuration | None,
) -> list[FilmShot]:
    shots = []
    for s in detection.shots:
        found = subjects.in_shot(s.index) if subjects else []
        doc = s.to_dict() | {
            "sample_key": shot_sample[s.index][0] if s.index in shot_sample else None,
            "sample_keys": shot_sample.get(s.index, []),
            "excluded_reason": plan.excluded.get(s.index),
            "keyframes": subjects.keyframes.get(s.index, []) if subjects else [],
            "subjects": subjects.shot_subjects(s.index) if subjects else [],
            "detections": [d.to_dict() for d in found],
        }
        if s.index in plan.scene_of:
            doc["scene"] = plan.scene_of[s.index]
        verdict = curation.shots.get(s.index) if curation else None
        if curation is not None:
            dup = verdict.duplicate_of if verdict else None
            doc |= {
                "crop": curation.shot_crop(s.index),
                "quality": verdict.record_quality() if verdict else {},
                "flags": list(verdict.flags) if verdict else [],
                "duplicate_of": {"film_id": dup[0], "shot": dup[1]} if dup else None,
            }
        shots.append(FilmShot.model_validate(doc))
    return shots


def _curation_fields(curation: FilmCuration | None) -> dict[str, Any]:
    """The record's curation fields; none at all when curation is off (the record is then
    the one a build before issue 16 wrote)."""
    if curation is None:
        return {}
    shots_in, kept, dropped = curation.funnel()
    return {
        "crop": list(curation.crop),
        "watermark": curation.watermark,
        "duplicate_of": {"film_id": curation.duplicate_of} if curation.duplicate_of else None,
        "curation": Curation(
            shots_in=shots_in, shots_kept=kept, dropped=dropped, not_run=dict(curation.not_run)
        ),
    }


def film_record(
    probe: FilmProbe,
    detection: ShotDetection,
    plan: WindowPlan,
    subjects: FilmSubjects | None,
    outcome: tuple[str, str | None],
    samples: list[IndexRow],
    dropped: list[DroppedSample],
    shot_sample: dict[int, list[str]],
    shards: list[ShardRecord],
    captions: dict | None,
    timings: dict[str, float],
    config: PipelineConfig,
    curation: FilmCuration | None = None,
) -> FilmRecord:
    """The record of a film whose shards are written: ``outcome`` is its (status, reason),
    ``captions`` the captioner's counters, whose wall-clock seconds stay out (they go to
    ``timings``, the one part of the record that differs between runs)."""
    status, reason = outcome
    if captions is not None:
        captions = {k: v for k, v in captions.items() if k != "model_seconds"}
    return FilmRecord(
        schema_version=SCHEMA_VERSION,
        film_id=probe.film_id,
        status=status,
        reason=reason,
        probe=probe,
        n_frames=detection.n_frames,
        shot_detector=detection.detector,
        transitions=[FilmTransition.model_validate(t.to_dict()) for t in detection.transitions],
        letterbox=None if detection.letterbox is None else Letterbox(**detection.letterbox),
        shots=_film_shots(detection, plan, subjects, shot_sample, curation),
        **({"scenes": plan.scenes} if plan.scenes else {}),
        subjects=[FilmSubject(**row) for row in subjects.summary()] if subjects else [],
        subject_stage=subjects.stage_record() if subjects else None,
        captions=captions,
        samples=samples,
        dropped_samples=dropped,
        excluded_shots={str(k): v for k, v in sorted(plan.excluded.items())},
        shards=shards,
        warnings=detection.warnings,
        timings=timings,
        determinism=determinism_mode(config),
        pipeline={"name": config.name, "config_hash": config.fingerprint(), "version": __version__},
        **_curation_fields(curation),
    )
