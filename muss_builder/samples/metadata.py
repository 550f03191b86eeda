"""The sample record of a window (built whole, once its clip and captions exist) and its
``index.parquet`` rows: one per track it serves (docs/layout.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from muss_builder import SCHEMA_VERSION, __version__
from muss_builder.captions.records import CaptionerInfo, ShotFacts, WindowCaptions
from muss_builder.captions.shot_facts import shot_facts
from muss_builder.captions.text import hierarchical_prompt
from muss_builder.config import PipelineConfig
from muss_builder.curation.catalog import MEASURES
from muss_builder.media.clips import ClipPlan, output_fps, plan_clip
from muss_builder.media.probe import FilmProbe
from muss_builder.samples.film_record import IndexRow
from muss_builder.samples.records import (
    ClipInfo,
    Sample,
    SampleFacts,
    SamplePipeline,
    SampleShot,
    SampleWindow,
    ShotSubject,
    Source,
    Span,
    SubjectBox,
)
from muss_builder.samples.subject_track import SubjectView, subject_view
from muss_builder.samples.windows import SUBJECT, Window
from muss_builder.shots.segment import Shot, ShotDetection
from muss_builder.subjects.stage import Detection, FilmSubjects, subject_order

# What a sample stores for facts that were not measured (no pixels: a shot too short for a
# motion fit, or captions off): objects of the same keys, never null (one type per field).
UNKNOWN_CAMERA = {
    "kind": "unknown", "magnitude": 0.0, "dx_per_second": 0.0, "dy_per_second": 0.0,
    "zoom_per_second": 0.0,
}  # fmt: skip
UNKNOWN_LIGHTING = {
    "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "colour": "unknown", "key": "unknown",
    "time_of_day": "unknown",
}  # fmt: skip


def sample_facts(facts: ShotFacts, scene: int = -1) -> SampleFacts:
    """A shot's facts as the sample stores them: camera and lighting always objects, and the
    shot's scene (-1 when scenes are off)."""
    doc = facts.model_dump(mode="json") | {"scene": scene}
    doc["camera"] = doc.get("camera") or UNKNOWN_CAMERA
    doc["lighting"] = doc.get("lighting") or UNKNOWN_LIGHTING
    return SampleFacts.model_validate(doc)


def _span(frames: tuple[int, int] | None) -> list[int]:
    return list(frames) if frames else []  # [] for a cut: a list in every sample


def _clip_span(plan: ClipPlan, frames: tuple[int, int] | None) -> list[int]:
    """Clip frames [first, last] that show the source transition frames [start, end]."""
    if not frames:
        return []
    return [plan.first_output_frame(frames[0]), plan.first_output_frame(frames[1] + 1) - 1]


def _shot_subjects(
    detections: list[Detection], plan: ClipPlan, clip_start: int, clip_end: int
) -> list[ShotSubject]:
    """Identified subjects of one shot; each box on the clip frame that shows its keyframe
    (or the next one at a lower output rate), kept inside the shot."""
    boxes: dict[str, list[SubjectBox]] = {}
    first: dict[str, Detection] = {}  # the subject's first detection names its kind and label
    for d in sorted(detections, key=lambda d: (d.frame, d.box)):
        if d.subject is None:
            continue
        first.setdefault(d.subject, d)
        clip_frame = min(max(plan.first_output_frame(d.frame), clip_start), clip_end - 1)
        boxes.setdefault(d.subject, []).append(
            SubjectBox(source_frame=d.frame, clip_frame=clip_frame, box=d.normalised_box())
        )
    return [
        ShotSubject(id=sid, kind=first[sid].kind, label=first[sid].label, boxes=boxes[sid])
        for sid in sorted(boxes, key=subject_order)
    ]


def _sample_shots(
    shots: list[Shot],
    plan: ClipPlan,
    subjects: FilmSubjects | None,
    captions: WindowCaptions | None,
    scene_of: Mapping[int, int],
) -> list[SampleShot]:
    fps = float(plan.fps)
    bounds = [plan.first_output_frame(s.start_frame) for s in shots] + [plan.n_frames]
    out = []
    for n, (shot, clip_start, clip_end) in enumerate(
        zip(shots, bounds[:-1], bounds[1:], strict=True)
    ):
        out.append(
            SampleShot(
                film_shot_index=shot.index,
                source_start_frame=shot.start_frame,
                source_end_frame=shot.end_frame,
                start_seconds=shot.start_seconds,
                end_seconds=shot.end_seconds,
                clip_start_frame=clip_start,
                clip_end_frame=clip_end,
                clip_start_seconds=round(clip_start / fps, 6),
                clip_end_seconds=round(clip_end / fps, 6),
                transition_in=shot.transition_in,
                transition_in_frames=_span(shot.transition_in_frames),
                transition_in_clip_frames=_clip_span(plan, shot.transition_in_frames),
                caption=captions.shots[n].text if captions else "",
                # measured without pixels when captions are off (no camera, no lighting)
                facts=sample_facts(
                    captions.facts[n] if captions else shot_facts(shot, subjects, None),
                    scene_of.get(shot.index, -1),
                ),
                subjects=_shot_subjects(
                    subjects.in_shot(shot.index) if subjects else [], plan, clip_start, clip_end
                ),
            )
        )
    return out


def _captioner(captions: WindowCaptions | None, config: PipelineConfig) -> CaptionerInfo:
    if captions is None:  # captions off: an object all the same (one type per field)
        return CaptionerInfo(backend="none", model="", sources=[], attempts=0)
    return CaptionerInfo(
        backend=config.captions.backend,
        model=config.captions.model or "",
        # "facts" means a sentence written from the measured facts, not by a language model
        sources=captions.sources(),
        attempts=captions.attempts(),
    )


_STARTS = {
    "film_edge": "starts the film",
    "scene_edge": "opens the scene",
    "exchange_edge": "opens an exchange",
    "run_edge": "starts after a shot no sample may hold",
    "limit": "starts where the length limits cut",
    "subject_edge": "starts on the subject",
}
_ENDS = {
    "film_edge": "ends the film",
    "scene_edge": "closes the scene",
    "exchange_edge": "closes an exchange",
    "run_edge": "ends before a shot no sample may hold",
    "limit": "ends where the length limits cut",
    "subject_edge": "ends on the subject",
}


def sample_window(
    window: Window, shots: list[Shot], scene_of: Mapping[int, int], uses: Mapping[int, int]
) -> SampleWindow:
    """The sample's ``window``: its kind, scenes, edges and why (``uses``: position -> how
    many samples of the film hold that shot)."""
    scenes = sorted({scene_of[s.index] for s in shots if s.index in scene_of})
    reason = window.reason
    if window.kind != SUBJECT:
        where = f"scene {scenes[0]}" if len(scenes) == 1 else f"scenes {scenes}" if scenes else ""
        edges = f"{_STARTS[window.start_point]}, {_ENDS[window.end_point]}"
        reason = "; ".join(x for x in (where, reason, edges) if x)
    return SampleWindow(
        kind=window.kind,  # type: ignore[arg-type]
        scenes=scenes,
        start_point=window.start_point,  # type: ignore[arg-type]
        end_point=window.end_point,  # type: ignore[arg-type]
        subject=window.subject,
        reason=reason,
        shot_uses=[max(1, uses.get(p, 1)) for p in window.positions],
    )


def _lone_window(n_shots: int) -> SampleWindow:
    """The window of a sample built without a plan (one montage window of its own)."""
    return SampleWindow(
        kind="scene", scenes=[], start_point="limit", end_point="limit", subject="",
        reason="", shot_uses=[1] * n_shots,
    )  # fmt: skip


def window_sample(
    key: str,
    probe: FilmProbe,
    n_source_frames: int,
    shots: list[Shot],
    plan: ClipPlan,
    clip_size: tuple[int, int],
    config: PipelineConfig,
    detector: str,
    subjects: FilmSubjects | None = None,
    captions: WindowCaptions | None = None,
    crop: list[int] | None = None,
    by_subject: dict[str, list[Detection]] | None = None,
    scene_of: Mapping[int, int] | None = None,
    window: SampleWindow | None = None,
) -> tuple[Sample, bytes]:
    """The sample of one window's clip and its ``refs.jpg`` strip: shot boundaries in clip
    frames, source frames, seconds, the film subjects seen in each shot with their boxes,
    the window's captions (empty when captions are off) and, when one of its subjects has
    references (``by_subject``: the film's reference pool), the subject view (``tracks``
    then lists "subject" too). ``crop``: the active picture (None: filters off, the whole
    frame)."""
    window = window or _lone_window(len(shots))
    fps = float(plan.fps)
    sample_shots = _sample_shots(shots, plan, subjects, captions, scene_of or {})
    view = SubjectView()
    if subjects is not None and config.subjects.subject_track and by_subject is not None:
        view = subject_view(sample_shots, by_subject, config, window.subject)
    prompt = ""
    if captions:
        prompt = hierarchical_prompt(captions.global_caption.text, [c.text for c in captions.shots])
    # validated whole by the model: every field typed, none left null
    sample = Sample(
        schema_version=SCHEMA_VERSION,
        key=key,
        film_id=probe.film_id,
        tracks=view.tracks(window.kind == SUBJECT),
        window=window,
        source=Source(
            file_name=probe.file_name,
            fps=probe.fps,
            width=probe.width,
            height=probe.height,
            n_frames=n_source_frames,
            variable_frame_rate=probe.variable_frame_rate,
        ),
        span=Span(
            start_frame=shots[0].start_frame,
            end_frame=shots[-1].end_frame,
            start_seconds=shots[0].start_seconds,
            end_seconds=shots[-1].end_seconds,
        ),
        clip=ClipInfo(
            fps=fps,
            width=clip_size[0],
            height=clip_size[1],
            n_frames=plan.n_frames,
            duration_seconds=round(plan.n_frames / fps, 6),
            codec="h264",
            pix_fmt="yuv420p",
        ),
        crop=list(crop) if crop is not None else [0, 0, probe.width, probe.height],
        shots=sample_shots,
        n_shots=len(shots),
        duration_seconds=round(shots[-1].end_seconds - shots[0].start_seconds, 6),
        subjects=sorted({s.id for shot in sample_shots for s in shot.subjects}, key=subject_order),
        focus_subjects=view.focus_subjects,
        references=view.references,
        global_caption=captions.global_caption.text if captions else "",
        prompt=prompt,
        caption_issues=captions.issues() if captions else [],
        captioner=_captioner(captions, config),
        pipeline=SamplePipeline(
            name=config.name,
            config_hash=config.fingerprint(),
            version=__version__,
            shot_detector=detector,
        ),
    )
    return sample, view.strip


def plan_window_clip(
    probe: FilmProbe, detection: ShotDetection, shots: list[Shot], config: PipelineConfig
) -> ClipPlan:
    """The frame-exact plan of a window's clip (as the clips stage encoded it)."""
    return plan_clip(
        detection.frame_pts,
        detection.end_pts,
        shots[0].start_frame,
        shots[-1].end_frame,
        output_fps(config.clips, probe),
    )


def quality_columns(shots: list[dict[str, float]]) -> dict[str, float | None]:
    """``worst_{m}`` and ``mean_{m}`` over a sample's shots for every curation measure (a fixed
    set: one Arrow schema for every row); None where no shot has the measure."""
    out: dict[str, float | None] = {}
    for measure, better in MEASURES.items():
        values = [q[measure] for q in shots if measure in q and math.isfinite(q[measure])]
        worst = (min if better == "high" else max)(values) if values else None
        out[f"worst_{measure}"] = None if worst is None else round(worst, 6)
        out[f"mean_{measure}"] = round(sum(values) / len(values), 6) if values else None
    return out


def index_rows(
    sample: Sample, shard: str, clip_bytes: int, quality: list[dict[str, float]] | None = None
) -> list[IndexRow]:
    """The ``index.parquet`` rows of a sample (see ``schemas/tables.json``): one per track it
    serves, with the same key and shard, so ``track = 'subject'`` selects the subject view
    (a reader that copies samples dedupes by key). ``n_refs`` counts the references the row's
    view uses (0 on a montage row); ``quality``: each of its shots' curation measures (None:
    filters off, no quality columns)."""
    return [index_row(sample, track, shard, clip_bytes, quality) for track in sample.tracks]


def index_row(
    sample: Sample,
    track: str,
    shard: str,
    clip_bytes: int,
    quality: list[dict[str, float]] | None = None,
) -> IndexRow:
    """The row of one (sample, track)."""
    extra: dict = {}
    if quality is not None:
        extra = {"crop": sample.crop} | quality_columns(quality)
    return IndexRow(
        key=sample.key,
        film_id=sample.film_id,
        shard=shard,
        track=track,
        window_kind=sample.window.kind,
        n_shots=sample.n_shots,
        duration_seconds=sample.duration_seconds,
        clip_frames=sample.clip.n_frames,
        clip_fps=sample.clip.fps,
        clip_width=sample.clip.width,
        clip_height=sample.clip.height,
        source_file=sample.source.file_name,
        source_start_frame=sample.span.start_frame,
        source_end_frame=sample.span.end_frame,
        shot_durations=[round(s.end_seconds - s.start_seconds, 6) for s in sample.shots],
        subjects=list(sample.subjects),
        n_refs=len(sample.references) if track == "subject" else 0,
        global_caption_chars=len(sample.global_caption),
        shot_caption_chars=[len(s.caption) for s in sample.shots],
        clip_bytes=clip_bytes,
        **extra,
    )
