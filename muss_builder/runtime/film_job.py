"""One film through every stage: probe -> shots -> samples -> clips -> shards -> film record.

``process_film`` never raises for a bad film: the failure is recorded on the result with a
readable reason, so the run goes on with the other films.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from muss_builder import SCHEMA_VERSION, __version__
from muss_builder.captions.captioner import Caption, Captioner, CaptionItem
from muss_builder.captions.collector import ShotPixelCollector, ShotPixels
from muss_builder.captions.shot_facts import shot_facts
from muss_builder.captions.text import hierarchical_prompt
from muss_builder.config import PipelineConfig
from muss_builder.media.clips import encode_clip, output_fps, plan_clip
from muss_builder.media.probe import FilmProbe, probe_film
from muss_builder.media.tools import MediaError
from muss_builder.runtime.layout import OutputLayout, remove_film_outputs, write_json_atomic
from muss_builder.samples.metadata import index_row, sample_document, sample_key
from muss_builder.samples.windows import clean_window_shots, plan_windows
from muss_builder.shards.writer import FilmShardWriter
from muss_builder.shots.segment import Shot, ShotDetection, detect_shots
from muss_builder.subjects.references import choose_references, focus_subject
from muss_builder.subjects.stage import Detection, FilmSubjects, find_subjects, subject_order

STAGES = ("probe", "shots", "subjects", "captions", "clips", "shards")


@dataclass
class FilmResult:
    """What the driver learns about one input film; becomes a films.parquet row."""

    path: str
    film_id: str | None
    status: str = "failed"  # ok | failed | skipped
    reason: str | None = None
    resumed: bool = False
    duration_seconds: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    n_frames: int | None = None
    n_shots: int = 0
    n_samples: int = 0
    n_shards: int = 0
    attempts: int = 1
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    captions: dict | None = None  # the captioner's counters (stats.json), not a table column

    def table_row(self) -> dict:
        row = asdict(self)
        row.pop("captions")
        timings = row.pop("timings")
        for stage in STAGES:
            row[f"seconds_{stage}"] = round(timings.get(stage, 0.0), 4)
        row["seconds_total"] = round(sum(timings.values()), 4)
        return row

    @classmethod
    def from_record(cls, path: str, record: dict, resumed: bool) -> FilmResult:
        """Rebuild a result from a finished ``films/{id}.json`` (used on resume)."""
        probe = record["probe"]
        return cls(
            path=path,
            film_id=record["film_id"],
            status=record["status"],
            reason=record.get("reason"),
            resumed=resumed,
            duration_seconds=probe["duration_seconds"],
            fps=probe["fps"],
            width=probe["width"],
            height=probe["height"],
            n_frames=record.get("n_frames"),
            n_shots=len(record["shots"]),
            n_samples=len(record["samples"]),
            n_shards=len(record["shards"]),
            attempts=0,
            timings={k: 0.0 for k in STAGES},
        )


class _Timer:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] += time.perf_counter() - self.start


def process_film(path: str, film_id: str, config: PipelineConfig, out_dir: str) -> FilmResult:
    """Build every sample of one film into its shards; record failures instead of raising."""
    result = FilmResult(path=path, film_id=film_id)
    layout = OutputLayout(Path(out_dir))
    layout.make()
    remove_film_outputs(layout, film_id)  # a previous, interrupted attempt leaves nothing behind
    try:
        with _Timer(result.timings, "probe"):
            probe = probe_film(path, film_id=film_id)
        result.duration_seconds, result.fps = probe.duration_seconds, probe.fps
        result.width, result.height = probe.width, probe.height
        with _Timer(result.timings, "shots"):
            detection = detect_shots(path, probe, config.shots, config.analysis)
        result.n_frames, result.n_shots = detection.n_frames, len(detection.shots)
        subjects, pixels = _keyframe_pass(path, probe, detection, config, result)
        _build_samples(path, probe, detection, subjects, pixels, config, layout, result)
    except MediaError as exc:
        remove_film_outputs(layout, film_id)
        result.status, result.reason = "failed", str(exc)
    except Exception as exc:  # a bug must not stop the run; it is reported on the film
        remove_film_outputs(layout, film_id)
        result.status, result.reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
    return result


def _build_samples(
    path: str,
    probe: FilmProbe,
    detection: ShotDetection,
    subjects: FilmSubjects | None,
    pixels: dict[int, ShotPixels],
    config: PipelineConfig,
    layout: OutputLayout,
    result: FilmResult,
) -> None:
    shots = detection.shots
    plan = plan_windows(shots, config.samples)
    windows = [clean_window_shots(shots, w, detection.seconds_of) for w in plan.windows]
    with _Timer(result.timings, "captions"):
        captions = _caption_windows(windows, subjects, pixels, config, layout, result)
    fps = output_fps(config.clips, probe)
    by_subject = subjects.by_subject() if subjects is not None else {}
    writer = FilmShardWriter(layout.shards, probe.film_id, config.shards.max_bytes)
    workdir = Path(tempfile.mkdtemp(prefix=f"muss-{probe.film_id}-"))
    samples: list[dict] = []
    dropped: list[dict] = []
    shot_sample: dict[int, str] = {}
    try:
        for window, window_shots, window_captions in zip(
            plan.windows, windows, captions, strict=True
        ):
            key = sample_key(probe.film_id, len(samples))
            clip_plan = plan_clip(
                detection.frame_pts,
                detection.end_pts,
                window_shots[0].start_frame,
                window_shots[-1].end_frame,
                fps,
            )
            starts = [clip_plan.first_output_frame(s.start_frame) for s in window_shots]
            if len(set(starts)) != len(starts):
                dropped.append(
                    {
                        "first_shot": window.first,
                        "last_shot": window.last,
                        "reason": f"a shot gets no frame at {float(fps):g} fps",
                    }
                )
                continue
            clip_path = workdir / f"{key}.mp4"
            with _Timer(result.timings, "clips"):
                size = encode_clip(
                    path, probe, detection.frame_pts, clip_plan, config.clips, clip_path
                )
            doc = sample_document(
                key,
                probe,
                detection.n_frames,
                window_shots,
                clip_plan,
                size,
                config,
                detection.detector,
                subjects,
            )
            if window_captions is not None:
                _put_captions(doc, *window_captions, config)
            clip = clip_path.read_bytes()
            clip_path.unlink()
            docs = [(doc, {})]
            if subjects is not None and config.subjects.subject_track:
                subject_doc = _subject_sample(doc, by_subject, config)
                if subject_doc is not None:
                    subject_doc[0]["key"] = sample_key(probe.film_id, len(samples) + 1)
                    docs.append(subject_doc)
            for sample_doc, refs in docs:
                members = {"json": json.dumps(sample_doc, sort_keys=True).encode(), "mp4": clip}
                with _Timer(result.timings, "shards"):
                    shard = writer.write(sample_doc["key"], members | refs)
                samples.append(index_row(sample_doc, shard, len(clip)))
            for shot in window_shots:
                shot_sample[shot.index] = key
        with _Timer(result.timings, "shards"):
            shard_infos = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result.n_samples, result.n_shards = len(samples), len(shard_infos)
    if samples:
        result.status, result.reason = "ok", None
    else:
        result.status = "skipped"
        result.reason = "no sample: " + (
            plan.reason_no_sample or "; ".join(d["reason"] for d in dropped)
        )
    record = {
        "schema_version": SCHEMA_VERSION,
        "film_id": probe.film_id,
        "status": result.status,
        "reason": result.reason,
        "probe": probe.model_dump(),
        "n_frames": detection.n_frames,
        "shot_detector": detection.detector,
        "transitions": [t.to_dict() for t in detection.transitions],
        "letterbox": detection.letterbox,
        "shots": [
            s.to_dict()
            | {
                "sample_key": shot_sample.get(s.index),
                "excluded_reason": plan.excluded.get(s.index),
            }
            | _shot_subject_record(subjects, s.index)
            for s in shots
        ],
        "subjects": subjects.summary() if subjects else [],
        "subject_stage": subjects.stage_record() if subjects else None,
        "captions": result.captions,
        "samples": samples,
        "dropped_samples": dropped,
        "excluded_shots": {str(k): v for k, v in sorted(plan.excluded.items())},
        "shards": [s.to_dict() for s in shard_infos],
        "warnings": detection.warnings,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "pipeline": {
            "name": config.name,
            "config_hash": config.fingerprint(),
            "version": __version__,
        },
    }
    # Written last: its presence (with the shards it lists) marks the film complete.
    write_json_atomic(layout.film_json(probe.film_id), record)


def _shot_subject_record(subjects: FilmSubjects | None, shot: int) -> dict:
    if subjects is None:
        return {"keyframes": [], "subjects": [], "detections": []}
    return {
        "keyframes": subjects.keyframes.get(shot, []),
        "subjects": subjects.shot_subjects(shot),
        "detections": [d.to_dict() for d in subjects.in_shot(shot)],
    }


def _subject_sample(
    montage: dict, by_subject: dict[str, list[Detection]], config: PipelineConfig
) -> tuple[dict, dict[str, bytes]] | None:
    """The subject-track twin of a montage sample: same clip, centred on the subject seen in
    most of its shots that has references, with ``ref{k}.jpg`` crops from other shots."""
    params = config.subjects.references
    sample_shots = [s["film_shot_index"] for s in montage["shots"]]
    present: dict[str, int] = {}
    for shot in montage["shots"]:
        for entry in shot["subjects"]:
            present[entry["id"]] = present.get(entry["id"], 0) + 1
    chosen = {}
    for sid in present:
        refs = choose_references(sid, by_subject[sid], sample_shots, params)
        if refs:
            chosen[sid] = refs
    focus = focus_subject({sid: present[sid] for sid in chosen})
    if focus is None:
        return None
    others = sorted(
        (s for s in chosen if s != focus), key=lambda s: (-present[s], subject_order(s))
    )
    order = [focus, *others]
    doc = json.loads(json.dumps(montage))  # a deep copy that stays JSON-plain
    doc["track"], doc["focus_subject"] = "subject", focus
    members: dict[str, bytes] = {}
    for sid in order[: params.max_subjects]:
        for ref in chosen[sid]:
            name = f"ref{len(members)}.jpg"
            members[name] = ref.detection.crop or b""
            doc["references"].append({"member": name} | ref.provenance())
    return doc, members


def _keyframe_pass(
    path: str,
    probe: FilmProbe,
    detection: ShotDetection,
    config: PipelineConfig,
    result: FilmResult,
) -> tuple[FilmSubjects | None, dict[int, ShotPixels]]:
    """One full-quality decode of the keyframes that feeds the subject models and, riding
    along, the captioner's pixel facts (camera motion, lighting, VLM images)."""
    if not (config.subjects.enabled or config.captions.enabled):
        return None, {}
    sub = config.subjects
    if not sub.enabled:  # keyframes for the captioner only: no face or object model
        sub = sub.model_copy(
            update={
                "faces": sub.faces.model_copy(update={"enabled": False}),
                "objects": sub.objects.model_copy(update={"enabled": False}),
            }
        )
    collector = None
    if config.captions.enabled:
        collector = ShotPixelCollector(
            detection.shots,
            detection.frame_pts,
            config.captions.motion_frames_per_shot,
            config.captions.images_per_shot,
            config.captions.image_side,
        )
    with _Timer(result.timings, "subjects"):
        subjects = find_subjects(path, probe, detection, sub, collector)
    pixels = collector.finish() if collector else {}
    return (subjects if config.subjects.enabled else None), pixels


def _caption_windows(
    windows: list[list[Shot]],
    subjects: FilmSubjects | None,
    pixels: dict[int, ShotPixels],
    config: PipelineConfig,
    layout: OutputLayout,
    result: FilmResult,
) -> list[tuple[list[dict], list[Caption], Caption] | None]:
    """(facts per shot, shot captions, global caption) of every window, or None each when
    captions are off. All shots of the film go to the backend together, then all globals."""
    if not config.captions.enabled:
        return [None] * len(windows)
    captioner = Captioner(config.captions, layout.root / "cache" / "captions")
    facts = [[shot_facts(s, subjects, pixels.get(s.index)) for s in w] for w in windows]
    present = [
        sorted({x["id"] for f in window_facts for x in f["subjects"]}, key=subject_order)
        for window_facts in facts
    ]
    shot_items = [
        CaptionItem(present[n], pixels.get(s.index, ShotPixels()).images, facts=f)
        for n, w in enumerate(windows)
        for s, f in zip(w, facts[n], strict=True)
    ]
    flat = iter(captioner.caption_shots(shot_items))
    shot_captions = [[next(flat) for _ in w] for w in windows]
    global_items = [
        CaptionItem(
            present[n],
            [
                pixels[s.index].images[0]
                for s in w
                if pixels.get(s.index) and pixels[s.index].images
            ][:4],
            shot_captions=[c.text for c in shot_captions[n]],
            shot_facts=facts[n],
        )
        for n, w in enumerate(windows)
    ]
    globals_ = captioner.caption_globals(global_items)
    result.captions = captioner.stats.to_dict()
    return list(zip(facts, shot_captions, globals_, strict=True))


def _put_captions(
    doc: dict, facts: list[dict], shot_captions: list[Caption], global_caption: Caption,
    config: PipelineConfig,
) -> None:  # fmt: skip
    issues = []
    for i, (shot, f, caption) in enumerate(zip(doc["shots"], facts, shot_captions, strict=True)):
        shot["facts"], shot["caption"] = f, caption.text
        issues += [{"shot": i, "issue": issue} for issue in caption.issues]
    issues += [{"shot": None, "issue": issue} for issue in global_caption.issues]
    doc["global_caption"] = global_caption.text
    doc["prompt"] = hierarchical_prompt(global_caption.text, [c.text for c in shot_captions])
    doc["caption_issues"] = issues
    sources = sorted({c.source for c in [*shot_captions, global_caption]})
    doc["captioner"] = {
        "backend": config.captions.backend,
        "model": config.captions.model,
        # "facts" means a sentence written from the measured facts, not by a language model
        "sources": sources,
        "attempts": max(c.attempts for c in [*shot_captions, global_caption]),
    }
