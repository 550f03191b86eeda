"""The sample ``.json`` document and its ``index.parquet`` row."""

from __future__ import annotations

from typing import Any

from muss_builder import SCHEMA_VERSION, __version__
from muss_builder.config import PipelineConfig
from muss_builder.media.clips import ClipPlan
from muss_builder.media.probe import FilmProbe
from muss_builder.shots.segment import Shot
from muss_builder.subjects.stage import Detection, FilmSubjects, subject_order


def _span(frames: tuple[int, int] | None) -> list[int] | None:
    return list(frames) if frames else None


def _clip_span(plan: ClipPlan, frames: tuple[int, int] | None) -> list[int] | None:
    """Clip frames [first, last] that show the source transition frames [start, end]."""
    if not frames:
        return None
    return [plan.first_output_frame(frames[0]), plan.first_output_frame(frames[1] + 1) - 1]


def _shot_subjects(
    detections: list[Detection], plan: ClipPlan, clip_start: int, clip_end: int
) -> list[dict[str, Any]]:
    """Identified subjects of one shot; each box on the clip frame that shows its keyframe
    (or the next one at a lower output rate), kept inside the shot."""
    entries: dict[str, dict[str, Any]] = {}
    for d in sorted(detections, key=lambda d: (d.frame, d.box)):
        if d.subject is None:
            continue
        entry = entries.setdefault(
            d.subject, {"id": d.subject, "kind": d.kind, "label": d.label, "boxes": []}
        )
        clip_frame = min(max(plan.first_output_frame(d.frame), clip_start), clip_end - 1)
        entry["boxes"].append(
            {"source_frame": d.frame, "clip_frame": clip_frame, "box": d.normalised_box()}
        )
    return [entries[k] for k in sorted(entries, key=subject_order)]


def sample_document(
    key: str,
    probe: FilmProbe,
    n_source_frames: int,
    shots: list[Shot],
    plan: ClipPlan,
    clip_size: tuple[int, int],
    config: PipelineConfig,
    detector: str,
    subjects: FilmSubjects | None = None,
) -> dict[str, Any]:
    """Metadata of one montage sample: shot boundaries in clip frames, source frames, seconds,
    and the film subjects seen in each shot with their boxes."""
    fps = float(plan.fps)
    bounds = [plan.first_output_frame(s.start_frame) for s in shots] + [plan.n_frames]
    shot_docs = []
    for shot, clip_start, clip_end in zip(shots, bounds[:-1], bounds[1:], strict=True):
        shot_docs.append(
            {
                "film_shot_index": shot.index,
                "source_start_frame": shot.start_frame,
                "source_end_frame": shot.end_frame,
                "start_seconds": shot.start_seconds,
                "end_seconds": shot.end_seconds,
                "clip_start_frame": clip_start,
                "clip_end_frame": clip_end,
                "clip_start_seconds": round(clip_start / fps, 6),
                "clip_end_seconds": round(clip_end / fps, 6),
                "transition_in": shot.transition_in,
                "transition_in_frames": _span(shot.transition_in_frames),
                "transition_in_clip_frames": _clip_span(plan, shot.transition_in_frames),
                "caption": None,
                "facts": None,
                "subjects": _shot_subjects(
                    subjects.in_shot(shot.index) if subjects else [], plan, clip_start, clip_end
                ),
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "key": key,
        "film_id": probe.film_id,
        "track": "montage",
        "source": {
            "file_name": probe.file_name,
            "fps": probe.fps,
            "width": probe.width,
            "height": probe.height,
            "n_frames": n_source_frames,
            "variable_frame_rate": probe.variable_frame_rate,
        },
        "span": {
            "start_frame": shots[0].start_frame,
            "end_frame": shots[-1].end_frame,
            "start_seconds": shots[0].start_seconds,
            "end_seconds": shots[-1].end_seconds,
        },
        "clip": {
            "fps": fps,
            "width": clip_size[0],
            "height": clip_size[1],
            "n_frames": plan.n_frames,
            "duration_seconds": round(plan.n_frames / fps, 6),
            "codec": "h264",
            "pix_fmt": "yuv420p",
        },
        "shots": shot_docs,
        "n_shots": len(shots),
        "duration_seconds": round(shots[-1].end_seconds - shots[0].start_seconds, 6),
        "subjects": sorted(
            {s["id"] for doc in shot_docs for s in doc["subjects"]}, key=subject_order
        ),
        "focus_subject": None,
        "references": [],
        "global_caption": None,
        "prompt": None,
        "caption_issues": [],
        "captioner": None,
        "pipeline": {
            "name": config.name,
            "config_hash": config.fingerprint(),
            "version": __version__,
            "shot_detector": detector,
        },
    }


def index_row(doc: dict[str, Any], shard: str, clip_bytes: int) -> dict:
    """The ``index.parquet`` row of a sample (see ``schemas/tables.json``)."""
    captions = [s["caption"] or "" for s in doc["shots"]]
    return {
        "key": doc["key"],
        "film_id": doc["film_id"],
        "shard": shard,
        "track": doc["track"],
        "n_shots": doc["n_shots"],
        "duration_seconds": doc["duration_seconds"],
        "clip_frames": doc["clip"]["n_frames"],
        "clip_fps": doc["clip"]["fps"],
        "clip_width": doc["clip"]["width"],
        "clip_height": doc["clip"]["height"],
        "source_file": doc["source"]["file_name"],
        "source_start_frame": doc["span"]["start_frame"],
        "source_end_frame": doc["span"]["end_frame"],
        "shot_durations": [round(s["end_seconds"] - s["start_seconds"], 6) for s in doc["shots"]],
        "subjects": list(doc["subjects"]),
        "n_refs": len(doc["references"]),
        "global_caption_chars": len(doc["global_caption"] or ""),
        "shot_caption_chars": [len(c) for c in captions],
        "clip_bytes": clip_bytes,
    }
