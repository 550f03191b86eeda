"""What a film carries between stages (``FilmWork``), what the driver learns (``FilmResult``),
and the per-film pieces the stages share: caption windows, subject samples, the film record.

The stages themselves are in ``stages.py``; ``film_flow.py`` moves a film through them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from muss_builder import SCHEMA_VERSION, __version__
from muss_builder.captions.captioner import Caption, Captioner, CaptionItem
from muss_builder.captions.collector import ShotPixelCollector, ShotPixels
from muss_builder.captions.shot_facts import shot_facts
from muss_builder.captions.text import hierarchical_prompt
from muss_builder.config import PipelineConfig
from muss_builder.core.naming import OutputLayout, reference_member
from muss_builder.core.text import escape_path, utf8_text
from muss_builder.determinism import determinism_mode
from muss_builder.media.probe import FilmProbe
from muss_builder.samples.windows import Window, WindowPlan
from muss_builder.shards.writer import ShardInfo
from muss_builder.shots.segment import Shot, ShotDetection
from muss_builder.subjects.references import choose_references, focus_subject
from muss_builder.subjects.stage import Detection, FilmSubjects, find_subjects, subject_order

# What a film's wall time is split into (FilmResult.timings; films.parquet's seconds_{bucket}):
# steps of the work, not the pipeline's stages (analyse times probe and shots apart).
TIMING_BUCKETS = ("probe", "shots", "subjects", "captions", "clips", "shards")


@dataclass
class FilmResult:
    """What the driver learns about one input film; becomes a films.parquet row."""

    path: str
    film_id: str | None
    status: str = "failed"  # ok | failed | skipped (running while its stages go on)
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
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_BUCKETS, 0.0))
    captions: dict | None = None  # the captioner's counters (stats.json), not a table column
    traceback: str | None = None  # where a failure came from (films.parquet and the build log)
    # What the workers reported on the way (retries, warnings): the build log, not a column.
    notes: list[str] = field(default_factory=list)
    # Set when the failure is the machine's, not the film's (the disk is full): the build stops.
    fatal: str | None = None

    def table_row(self) -> dict:
        row = asdict(self)
        for key in ("captions", "notes", "fatal"):
            row.pop(key)
        # Arrow and JSON readers refuse the surrogates of a non-UTF-8 file name (names.py).
        row["path"] = escape_path(self.path)
        for key in ("reason", "traceback"):
            row[key] = utf8_text(row[key]) if row[key] is not None else None
        timings = row.pop("timings")
        for bucket in TIMING_BUCKETS:
            row[f"seconds_{bucket}"] = round(timings.get(bucket, 0.0), 4)
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
            timings={k: 0.0 for k in TIMING_BUCKETS},
        )


@dataclass
class ClipOut:
    """One window's encoded clip, or why it has none."""

    window: int
    clip: bytes | None = None
    size: tuple[int, int] | None = None
    dropped: str | None = None


@dataclass
class FilmWork:
    """Everything one film carries from stage to stage (a Ray object between tasks/actors)."""

    path: str
    film_id: str
    config: PipelineConfig
    out_dir: str
    result: FilmResult
    probe: FilmProbe | None = None
    detection: ShotDetection | None = None
    plan: WindowPlan | None = None
    windows: list[list[Shot]] = field(default_factory=list)  # clean shots of each window
    subjects: FilmSubjects | None = None
    pixels: dict[int, ShotPixels] = field(default_factory=dict)
    captions: list[tuple[list[dict], list[Caption], Caption] | None] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.result.status == "failed"


class Timer:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] += time.perf_counter() - self.start


def shot_subject_record(subjects: FilmSubjects | None, shot: int) -> dict:
    if subjects is None:
        return {"keyframes": [], "subjects": [], "detections": []}
    return {
        "keyframes": subjects.keyframes.get(shot, []),
        "subjects": subjects.shot_subjects(shot),
        "detections": [d.to_dict() for d in subjects.in_shot(shot)],
    }


def subject_sample(
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
            name = reference_member(len(members))
            members[name] = ref.detection.crop or b""
            doc["references"].append({"member": name} | ref.provenance())
    return doc, members


def keyframe_pass(
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
    with Timer(result.timings, "subjects"):
        subjects = find_subjects(path, probe, detection, sub, collector)
    pixels = collector.finish() if collector else {}
    return (subjects if config.subjects.enabled else None), pixels


def caption_windows(
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


def put_captions(
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


def film_record(
    work: FilmWork,
    samples: list[dict],
    dropped: list[dict],
    shot_sample: dict[int, str],
    shard_infos: list[ShardInfo],
) -> dict:
    """The ``films/{id}.json`` document: written last, it marks the film complete."""
    probe, detection, plan = work.probe, work.detection, work.plan
    assert probe is not None and detection is not None and plan is not None
    config, result, subjects = work.config, work.result, work.subjects
    return {
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
            | shot_subject_record(subjects, s.index)
            for s in detection.shots
        ],
        "subjects": subjects.summary() if subjects else [],
        "subject_stage": subjects.stage_record() if subjects else None,
        "captions": _without_seconds(result.captions),
        "samples": samples,
        "dropped_samples": dropped,
        "excluded_shots": {str(k): v for k, v in sorted(plan.excluded.items())},
        "shards": [s.to_dict() for s in shard_infos],
        "warnings": detection.warnings,
        "timings": record_timings(work),
        "determinism": determinism_mode(config),
        "pipeline": {
            "name": config.name,
            "config_hash": config.fingerprint(),
            "version": __version__,
        },
    }


def _without_seconds(captions: dict | None) -> dict | None:
    if captions is None:
        return None
    return {k: v for k, v in captions.items() if k != "model_seconds"}


def record_timings(work: FilmWork) -> dict[str, float]:
    """Every wall-clock figure of the film record, in one place: the rest of the record is
    the same on every run, so a comparison of two builds drops ``timings`` alone."""
    timings = {k: round(v, 4) for k, v in work.result.timings.items()}
    if work.subjects is not None:
        timings |= work.subjects.timings()
    if work.result.captions and "model_seconds" in work.result.captions:
        timings["captions_model"] = round(work.result.captions["model_seconds"], 4)
    return timings


def window_seconds(work: FilmWork, window: Window) -> float:
    assert work.detection is not None
    shots = work.detection.shots
    return shots[window.last].end_seconds - shots[window.first].start_seconds
