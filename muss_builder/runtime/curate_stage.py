"""The curate stage (after subjects, before captions): claim the film's shots in the build's
duplicate registry, decide each shot's flags, group the shots into scenes, and plan the sample
windows over kept shots inside each scene.

The registry (``duplicate_registry.py``) is one per build output: a plain object in this
process (inline) or the build's named Ray actor. A film that claimed and then failed, or is
retried, must not stay registered (a later copy would be called a duplicate of footage the
dataset does not hold): the driver calls ``forget_film`` for every failed film, and a retried
attempt's claim replaces its earlier one.
"""

from __future__ import annotations

import threading
from typing import Any

from muss_builder.config import PipelineConfig
from muss_builder.core.storage import Storage
from muss_builder.curation.examples import EXAMPLES_PER_REASON, example_members
from muss_builder.runtime.duplicate_registry import open_registry
from muss_builder.runtime.film_job import FilmWork, Timer
from muss_builder.runtime.stage_base import Stage
from muss_builder.samples.curate import cut_detections, decide, shot_seconds
from muss_builder.samples.scene_plan import plan_film
from muss_builder.samples.subject_track import reference_pool
from muss_builder.samples.windows import clean_window_shots, plan_windows
from muss_builder.subjects.references import choose_references

_registries: dict[tuple[str, bool, str], Any] = {}
_lock = threading.Lock()


def _in_ray_worker() -> bool:
    """Whether this process is a Ray worker or a driver with Ray up (a Ray build)."""
    import sys

    if "ray" not in sys.modules:
        return False
    import ray

    return ray.is_initialized()


def registry_for(out_dir: str, config: PipelineConfig, use_ray: bool | None = None) -> Any:
    """This process's handle on the registry of ``out_dir`` (opened once per process)."""
    use_ray = _in_ray_worker() if use_ray is None else use_ray
    dup = config.filters.duplicates
    key = (out_dir, use_ray, dup.model_dump_json())
    with _lock:
        if key not in _registries:
            _registries[key] = open_registry(out_dir, use_ray, dup)
        return _registries[key]


def forget_film(out_dir: str, config: PipelineConfig, film_id: str) -> None:
    """Drop a failed film's claim (nothing happens when it never claimed). The driver calls
    it: in a Ray build it reaches the same actor as the workers, inline the same object."""
    if config.filters.duplicates_on:
        registry_for(out_dir, config).forget(film_id)


def close_registries() -> None:
    """Forget this process's handles (a build's end: the next build reopens from the files)."""
    with _lock:
        _registries.clear()


def _write_examples(work: FilmWork, thumbs: dict[int, bytes] | None, dropped: dict) -> None:
    """Thumbnails of the first dropped shots of each reason, for the report (in OUT: they are
    removed with the film's other outputs when it is built again)."""
    store = Storage.open(work.out_dir)
    members = example_members(work.film_id, thumbs or {}, dropped, EXAMPLES_PER_REASON)
    for rel, data in members.items():
        store.write_bytes(rel, data)


class CurateStage(Stage):
    """Duplicates, each shot's verdict, and the windows of kept shots."""

    name = "curate"

    def runs_in_input_order(self, config: PipelineConfig) -> bool:
        """Claims follow the input order: of two copies, the earlier input is the original
        whichever finished its keyframe pass first (``runtime.claims_in_input_order``)."""
        return config.runtime.claims_in_input_order and config.filters.duplicates_on

    def process(self, work: FilmWork, unit: Any) -> FilmWork:
        detection, config = work.detection, work.config
        assert detection is not None
        curation = work.curation
        with Timer(work.result.timings, "curate"):
            if curation is not None:
                reports = work.keyframe_reports
                duplicates = None
                if reports.fingerprints is not None:
                    registry = registry_for(work.out_dir, config)
                    duplicates = registry.claim(
                        work.film_id,
                        reports.fingerprints,
                        shot_seconds(detection, reports.fingerprints),
                    )
                cut_at = {i: list(v.crop) for i, v in curation.shots.items()}
                decide(curation, reports, duplicates, config)
                _write_examples(work, reports.thumbs, curation.dropped())
                cut_detections(work.subjects, curation, cut_at)
                work.keyframe_reports = None  # decided: the reports need not travel further
            dropped = curation.dropped() if curation else {}
            crops = curation.crop_groups(len(detection.shots)) if curation else None
            if curation is not None and curation.duplicate_of:
                work.plan = plan_windows([], config.samples)  # a copy: no window at all
                work.plan.excluded = dropped
            else:
                work.plan = plan_film(
                    detection.shots, config, dropped, crops, work.shot_looks, work.subjects,
                    _reference_check(work),
                )  # fmt: skip
            work.shot_looks = {}  # segmented: the histograms need not travel further
            work.windows = [
                clean_window_shots(detection.shots, w, detection.seconds_of)
                for w in work.plan.windows
            ]
        return work


def _reference_check(work: FilmWork) -> Any:
    """Whether a subject view of some shots would find the subject a reference crop (None
    when the film has no subject track)."""
    config = work.config
    if work.subjects is None or not config.subjects.subject_track:
        return None
    pool = reference_pool(work.subjects, work.curation)
    params = config.subjects.references

    def check(subject: str, film_shots: list[int]) -> bool:
        return bool(choose_references(subject, pool.get(subject, []), film_shots, params))

    return check
