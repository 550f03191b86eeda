"""The film pipeline as a list of stages: analyse -> subjects -> curate -> captions -> clips
-> shards (``curate`` is in ``curate_stage.py``: it plans the windows once the filters spoke).

Each stage is a small ``Stage`` (``stage_base.py``): ``setup(config)`` loads its models,
``process(work, unit)`` does its part of one film. ``units_for`` lets a stage fan one film out
into units that run in parallel (the clips of a long film); ``ShardsStage`` takes the units'
clips in window order, so a split film is written exactly as an unsplit one. The drivers
(``inline.py``, ``streaming.py``) move a film through the list with ``film_flow.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from muss_builder.captions.captioner import make_backend
from muss_builder.captions.film import caption_windows
from muss_builder.captions.keyframe_pass import keyframe_pass
from muss_builder.config import PipelineConfig
from muss_builder.core.models import pick_device
from muss_builder.core.naming import REFS_MEMBER, film_record_path, sample_key
from muss_builder.core.storage import Storage, film_cache_dir, is_remote, local_copy
from muss_builder.core.text import escape_path
from muss_builder.curation.picture import analyse_film
from muss_builder.media.clips import encode_clip_or_fall_back, output_fps, plan_clip
from muss_builder.media.gpu import choose_decoder
from muss_builder.media.probe import probe_film
from muss_builder.runtime.curate_stage import CurateStage
from muss_builder.runtime.film_job import ClipOut, FilmResult, FilmWork, Timer, record_timings
from muss_builder.runtime.inputs import shown_path
from muss_builder.runtime.layout import remove_film_outputs, staging_layout
from muss_builder.runtime.stage_base import Gathered, Stage, StageReport
from muss_builder.samples.curate import (
    alignment_runs,
    check_alignment,
    finish_collectors,
    keyframe_collectors,
    load_curation_models,
    start_curation,
)
from muss_builder.samples.film_record import DroppedSample, IndexRow, ShardRecord, film_record
from muss_builder.samples.metadata import (
    index_rows,
    plan_window_clip,
    sample_window,
    window_sample,
)
from muss_builder.samples.picture_plan import picture_cut
from muss_builder.samples.subject_track import reference_pool
from muss_builder.samples.verdicts import FilmCuration
from muss_builder.samples.windows import WindowPlan, window_seconds
from muss_builder.scenes.looks import ShotLookCollector
from muss_builder.shards.writer import FilmShardWriter
from muss_builder.shots.segment import Shot, detect_shots, settled_probe
from muss_builder.shots.transnet import load_transnet
from muss_builder.subjects.stage import load_subject_models


def local_film(work: FilmWork) -> str:
    """A path ffmpeg can read: the film itself, or this node's copy of a remote one."""
    if not is_remote(work.path):
        return work.path
    return str(local_copy(work.path, film_cache_dir()))


class AnalyseStage(Stage):
    """Probe, shot detection (a long film in parallel ranges) and, off the same decode, the
    picture filters (crops, logo, black/static/flash)."""

    name = "analyse"

    def setup(self, config: PipelineConfig) -> None:
        if config.shots.detector in ("muss", "transnetv2"):  # both ask TransNetV2
            load_transnet(pick_device(config.shots.transnetv2.device, "TransNetV2"))

    def process(self, work: FilmWork, unit: Any) -> FilmWork:
        config, result = work.config, work.result
        # a previous, interrupted attempt leaves nothing behind
        remove_film_outputs(Storage.open(work.out_dir), work.film_id)
        with Timer(result.timings, "probe"):
            path = local_film(work)
            media = config.media
            probe = probe_film(
                path, film_id=work.film_id, deinterlace=media.deinterlace, decoder=media.decoder
            )
            # this node's view; every decode decides for itself (media/gpu.py)
            decoder = choose_decoder(media.decoder, probe.video_codec)
            result.notes += [f"warning: {decoder.warning}"] if decoder.warning else []
            # The record names the film, not this node's copy of it, and a name that is not
            # UTF-8 is escaped so that tables and JSON readers take it (core/text.py).
            name = work.path.rsplit("/", 1)[-1]
            shown = shown_path(work.path, config.runtime.inputs)
            probe = probe.model_copy(
                update={"path": escape_path(shown), "file_name": escape_path(name)}
            )
            work.probe = probe
        result.duration_seconds, result.fps = probe.duration_seconds, probe.fps
        result.width, result.height = probe.width, probe.height
        filters = config.filters
        with Timer(result.timings, "shots"):
            if filters.enabled:  # the picture filters ride the shot decode
                work.detection, picture = analyse_film(
                    path, probe, config.shots, config.analysis, filters.picture
                )
            else:
                work.detection, picture = (
                    detect_shots(path, probe, config.shots, config.analysis),
                    None,
                )
        detection = work.detection
        # rebuilt timestamps: later stages decode without seeking, and the film is as long
        # as the decode found (the container measured it up to the first restart)
        work.probe = probe = settled_probe(probe, detection)
        result.duration_seconds = probe.duration_seconds
        result.notes += [f"warning: {w}" for w in detection.warnings]
        result.n_frames, result.n_shots = detection.n_frames, len(detection.shots)
        if filters.enabled:  # crops and the logo; the windows wait for the curate stage
            work.curation = start_curation(picture, probe, detection, filters)
            if picture is not None and picture.ran:
                work.filter_seconds |= {f"picture_{k}": v for k, v in picture.seconds.items()}
        return work


class SubjectsStage(Stage):
    """Keyframes, faces/objects and film identities; the caption pixels ride the same decode."""

    name = "subjects"
    kind = "actor"

    def setup(self, config: PipelineConfig) -> None:
        if config.subjects.enabled:  # else the keyframe pass runs for the captioner only
            load_subject_models(config.subjects)
        load_curation_models(config)  # text detector, duplicate embedder, model filters

    def process(self, work: FilmWork, unit: Any) -> FilmWork:
        probe, detection, config = work.probe, work.detection, work.config
        assert probe is not None and detection is not None
        collectors: dict[str, Any] = {}
        crops = None
        if work.curation is not None:  # keyframes cut to the active picture, filters ride
            collectors, crops = keyframe_collectors(detection, work.curation, probe, config)
        looks = ShotLookCollector(detection.shots) if config.scenes.enabled else None
        riders = [*collectors.values(), *([looks] if looks else [])]
        with Timer(work.result.timings, "subjects"):
            work.subjects, work.pixels = keyframe_pass(
                local_film(work), probe, detection, config, riders, crops
            )
            if work.curation is not None:
                work.keyframe_reports = finish_collectors(collectors)
                work.filter_seconds |= work.keyframe_reports.seconds
            if looks is not None:
                work.shot_looks = looks.finish()
        return work


class CaptionsStage(Stage):
    """Shot and global captions of every window (facts, a local VLM, or an endpoint)."""

    name = "captions"
    kind = "actor"

    def setup(self, config: PipelineConfig) -> None:
        if config.captions.enabled and config.captions.backend != "facts":
            make_backend(config.captions)  # kept for this process's later films

    def process(self, work: FilmWork, unit: Any) -> FilmWork:
        layout = staging_layout(work.out_dir)  # the caption cache is node-local when remote
        with Timer(work.result.timings, "captions"):
            captions = caption_windows(
                work.windows,
                work.subjects,
                work.pixels,
                work.config,
                layout.root / "cache" / "captions",
                work.plan.scene_of if work.plan else None,
            )
        work.captions = captions.windows
        if captions.stats is not None:
            work.result.captions = captions.stats
        if work.curation is not None and alignment_runs(work.config):
            _drop_misaligned(work)
        work.pixels = {}  # captioned: the frames need not travel further
        return work


class ClipsStage(Stage):
    """Encode the windows' clips; a long film is split into units of ``clip_unit_seconds``."""

    name = "clips"
    fan_out = True

    def units_for(self, report: StageReport, config: PipelineConfig) -> list[Any]:
        limit = config.runtime.clip_unit_seconds
        units: list[list[int]] = [[]]
        footage = 0.0
        for i, seconds in enumerate(report.window_seconds or []):
            if units[-1] and footage + seconds > limit:
                units.append([])
                footage = 0.0
            units[-1].append(i)
            footage += seconds
        return units

    def covered_seconds(self, work: FilmWork, unit: Any) -> float:
        if work.plan is None or work.detection is None or not unit:
            return 0.0
        return sum(window_seconds(work.detection.shots, work.plan.windows[i]) for i in unit)

    def process(self, work: FilmWork, unit: list[int]) -> list[ClipOut]:
        assert work.probe is not None and work.detection is not None
        probe, detection, config = work.probe, work.detection, work.config
        fps = output_fps(config.clips, probe)
        out: list[ClipOut] = []
        film = local_film(work)
        workdir = Path(tempfile.mkdtemp(prefix=f"muss-{probe.film_id}-"))
        try:
            for i in unit:
                shots = work.windows[i]
                plan = plan_clip(
                    detection.frame_pts,
                    detection.end_pts,
                    shots[0].start_frame,
                    shots[-1].end_frame,
                    fps,
                )
                starts = [plan.first_output_frame(s.start_frame) for s in shots]
                if len(set(starts)) != len(starts):
                    out.append(ClipOut(i, dropped=f"a shot gets no frame at {float(fps):g} fps"))
                    continue
                path = workdir / f"{i}.mp4"
                # a window's shots share one crop (the planner never mixes two)
                cut = picture_cut(work.curation, shots[0].index, probe)
                size, note = encode_clip_or_fall_back(
                    film, probe, detection.frame_pts, plan, config.clips, path, picture=cut
                )
                out.append(ClipOut(i, path.read_bytes(), size, note=note))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return out


class ShardsStage(Stage):
    """Sample documents (one per window, serving both tracks) and shards, then the film
    record (written last)."""

    name = "shards"

    def process(self, work: FilmWork, unit: Gathered) -> FilmWork:
        probe, detection, plan = work.probe, work.detection, work.plan
        assert probe is not None and detection is not None and plan is not None
        config, result, subjects = work.config, work.result, work.subjects
        result.timings["clips"] += unit.seconds
        layout = staging_layout(work.out_dir)
        layout.make()
        curation = work.curation
        by_subject = reference_pool(subjects, curation)
        writer = FilmShardWriter(layout.shards, probe.film_id, config.shards.max_bytes)
        samples: list[IndexRow] = []  # index rows: one per (sample, track)
        n_samples = 0
        dropped: list[DroppedSample] = []
        shot_sample: dict[int, list[str]] = {}  # shot -> the samples holding it
        uses = plan.shot_uses()
        try:
            for clip in _clips_in_order(unit.units):
                if clip.note and f"warning: {clip.note}" not in result.notes:  # once a film
                    result.notes.append(f"warning: {clip.note}")
                window, shots = plan.windows[clip.window], work.windows[clip.window]
                if clip.clip is None or clip.size is None:
                    dropped.append(
                        DroppedSample(
                            first_shot=window.first, last_shot=window.last, reason=clip.dropped
                        )
                    )
                    continue
                # one sample per window, serving both tracks: its clip is stored once
                key = sample_key(probe.film_id, n_samples)
                captions = work.captions[clip.window] if work.captions else None
                crop = curation.shot_crop(shots[0].index) if curation else None
                clip_plan = plan_window_clip(probe, detection, shots, config)
                sample, strip = window_sample(
                    key, probe, detection.n_frames, shots, clip_plan, clip.size, config,
                    detection.detector, subjects, captions, crop, by_subject, plan.scene_of,
                    sample_window(window, shots, plan.scene_of, uses),
                )  # fmt: skip
                if sample.tracks == ["subject"] and not sample.references:
                    dropped.append(
                        DroppedSample(
                            first_shot=window.first,
                            last_shot=window.last,
                            reason=f"no reference for subject {window.subject}",
                        )
                    )
                    continue
                n_samples += 1
                members = {"json": sample.to_json_bytes(), "mp4": clip.clip, REFS_MEMBER: strip}
                with Timer(result.timings, "shards"):
                    shard = writer.write(sample.key, members)
                quality = _window_quality(curation, shots)
                samples += index_rows(sample, shard, len(clip.clip), quality)
                for shot in shots:
                    shot_sample.setdefault(shot.index, []).append(key)
            with Timer(result.timings, "shards"):
                shard_infos = writer.close()
        except BaseException:
            writer.abort()
            raise
        result.n_samples, result.n_shards = n_samples, len(shard_infos)
        _outcome(result, plan, dropped, curation)
        record = film_record(
            probe, detection, plan, subjects, (result.status, result.reason), samples, dropped,
            shot_sample, [ShardRecord.model_validate(s.to_dict()) for s in shard_infos],
            result.captions, record_timings(work), config, curation,
        )  # fmt: skip
        store = Storage.open(work.out_dir)
        if store.remote:  # publish: every shard, whole, before the record that lists them
            for info in shard_infos:
                local = layout.shards / info.name
                store.put_file(local, f"shards/{info.name}")
                local.unlink()
        # Written last: its presence (with the shards it lists) marks the film complete.
        store.write_bytes(film_record_path(probe.film_id), record.to_json_bytes())
        return work


def _drop_misaligned(work: FilmWork) -> None:
    """Caption-frame alignment: a misaligned window leaves the plan (its shots excluded with
    the flag as reason) before any clip is encoded."""
    plan, curation = work.plan, work.curation
    assert plan is not None and curation is not None
    captions = work.captions or [None] * len(plan.windows)
    keep = check_alignment(curation, work.windows, captions, work.pixels, work.config)
    held = {p for w, k in zip(plan.windows, keep, strict=True) if k for p in w.positions}
    for window, kept in zip(plan.windows, keep, strict=True):
        if not kept:  # (a shot another, overlapping window keeps is not left out)
            plan.excluded |= dict.fromkeys(set(window.positions) - held, "misaligned")
    if plan.windows and not any(keep):
        plan.reason_no_sample = f"all {len(keep)} windows misaligned (caption vs frames)"
    plan.windows = [w for w, k in zip(plan.windows, keep, strict=True) if k]
    work.windows = [w for w, k in zip(work.windows, keep, strict=True) if k]
    if work.captions:
        work.captions = [c for c, k in zip(work.captions, keep, strict=True) if k]


def _outcome(
    result: FilmResult,
    plan: WindowPlan,
    dropped: list[DroppedSample],
    curation: FilmCuration | None,
) -> None:
    """The film's status and reason, and its curation funnel for films.parquet."""
    if curation is not None:
        shots_in, kept, by_flag = curation.funnel()
        result.shots_kept, result.shots_dropped = kept, shots_in - kept
        result.dropped, result.duplicate_of = by_flag, curation.duplicate_of
    if curation is not None and curation.duplicate_of:
        result.status = "duplicate"
        result.reason = f"duplicate of film {curation.duplicate_of} (an earlier input)"
    elif result.n_samples:
        result.status, result.reason = "ok", None
    else:
        result.status = "skipped"
        result.reason = "no sample: " + (
            plan.reason_no_sample or "; ".join(d.reason for d in dropped)
        )


def _window_quality(curation: FilmCuration | None, shots: list[Shot]) -> list[dict] | None:
    if curation is None:
        return None
    return [curation.shots[s.index].quality if s.index in curation.shots else {} for s in shots]


def _clips_in_order(units: list[Any]) -> Any:
    """Yield each unit's clips; a Ray reference is fetched only when its turn comes."""
    for unit in units:
        if not isinstance(unit, list):
            import ray

            unit = ray.get(unit)
        yield from unit


def default_stages() -> list[Stage]:
    return [
        AnalyseStage(), SubjectsStage(), CurateStage(), CaptionsStage(), ClipsStage(), ShardsStage()
    ]  # fmt: skip
