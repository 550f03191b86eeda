"""The build driver: inputs -> identify -> dedupe/resume -> film jobs -> tables and stats."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from muss_builder import __version__
from muss_builder.config import PipelineConfig
from muss_builder.runtime.executors import InlineExecutor, RayExecutor, TaskFailure, make_executor
from muss_builder.runtime.film_job import STAGES, FilmResult
from muss_builder.runtime.inputs import expand_inputs, identify
from muss_builder.runtime.layout import OutputLayout, film_is_complete, json_bytes
from muss_builder.runtime.monitor import StageMonitor
from muss_builder.runtime.stages import Stage, StageReport, default_stages, process_film
from muss_builder.runtime.storage import Storage, is_remote
from muss_builder.runtime.tables import index_rows_from_records, merge_film_rows, table_bytes


@dataclass
class BuildSummary:
    out: Path | str  # a url when the output is on an object store
    results: list[FilmResult]
    stats: dict
    n_index_rows: int

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


@dataclass
class Progress:
    """Counters the CLI shows while films finish; ``on_film`` is called once per film."""

    total: int = 0
    on_film: Callable[[FilmResult, Progress], None] | None = None
    on_tick: Callable[[StageMonitor, Progress], None] | None = None  # per-stage live figures
    done: list[FilmResult] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def tick(self, monitor: StageMonitor) -> None:
        if self.on_tick:
            self.on_tick(monitor, self)

    def add(self, result: FilmResult) -> None:
        self.done.append(result)
        if self.on_film:
            self.on_film(result, self)

    def totals(self) -> dict[str, float]:
        films_seconds = sum(r.duration_seconds or 0 for r in self.done if r.status != "failed")
        wall = max(1e-9, time.perf_counter() - self.started)
        return {
            "ok": sum(r.status == "ok" for r in self.done),
            "failed": sum(r.status == "failed" for r in self.done),
            "skipped": sum(r.status == "skipped" for r in self.done),
            "shots": sum(r.n_shots for r in self.done),
            "samples": sum(r.n_samples for r in self.done),
            "film_seconds_per_wall_second": films_seconds / wall,
        }


def _identify_or_fail(path: str) -> str | TaskFailure:
    try:
        return identify(path)
    except Exception as exc:  # a bad path is a failed row, not a crashed run
        return TaskFailure(str(exc))


def build(
    movies: list[str],
    out: str | Path,
    config: PipelineConfig,
    *,
    executor: str | None = None,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    progress: Progress | None = None,
    stages: list[Stage] | None = None,
) -> BuildSummary:
    """Build (or resume) the dataset of ``movies`` into ``out``. ``stages`` replaces the
    default pipeline (``stages.default_stages()``), e.g. with a stage of your own."""
    started = time.perf_counter()
    store = Storage.open(str(out))
    if not store.remote:
        OutputLayout(Path(store.root)).make()
    progress = progress or Progress()
    candidates = expand_inputs(movies)
    results: list[FilmResult] = []
    with make_executor(
        executor or config.runtime.executor,
        address=ray_address,
        num_cpus=num_cpus,
        max_in_flight=config.runtime.max_in_flight,
    ) as ex:
        readable = []
        for cand in candidates:
            if not is_remote(cand.path):
                cand.path = str(Path(cand.path).absolute())
            if cand.problem:
                results.append(FilmResult(path=cand.path, film_id=None, reason=cand.problem))
            else:
                readable.append(cand.path)
        ids: dict[int, str | TaskFailure] = dict(
            ex.imap(_identify_or_fail, [(p,) for p in readable], num_cpus=0.5)
        )
        todo: list[tuple[str, str]] = []
        first_path: dict[str, str] = {}
        for i, path in enumerate(readable):
            film_id = ids[i]
            if isinstance(film_id, TaskFailure):
                results.append(FilmResult(path=path, film_id=None, reason=film_id.message))
            elif film_id in first_path:
                results.append(
                    FilmResult(
                        path=path,
                        film_id=film_id,
                        status="skipped",
                        reason=f"duplicate of {first_path[film_id]}",
                        attempts=0,
                    )
                )
            else:
                first_path[film_id] = path
                record = film_is_complete(store, film_id, config.fingerprint())
                if record is not None:
                    results.append(FilmResult.from_record(path, record, resumed=True))
                else:
                    todo.append((path, film_id))
        progress.total = len(results) + len(todo)
        for r in results:
            progress.add(r)
        stages = stages or default_stages()
        monitor, runtime = _run_films(ex, todo, stages, config, store.root, progress)
        results = list(progress.done)  # the early rows above were added to it first
    wall = time.perf_counter() - started
    results.sort(key=lambda r: r.path)
    film_rows = merge_film_rows(store, [r.table_row() for r in results])
    store.write_bytes("films.parquet", table_bytes(film_rows, "films"))
    index_rows = index_rows_from_records(store)
    store.write_bytes("index.parquet", table_bytes(index_rows, "index"))
    stats = run_stats(results, wall, config, executor or config.runtime.executor, index_rows)
    stats["stages"] = monitor.summary(wall)
    stats["runtime"] = runtime
    store.write_bytes("stats.json", json_bytes(stats))
    out_root = store.root if store.remote else Path(store.root)
    return BuildSummary(out_root, results, stats, len(index_rows))


def _run_films(
    ex: InlineExecutor | RayExecutor,
    todo: list[tuple[str, str]],
    stages: list[Stage],
    config: PipelineConfig,
    out: str,
    progress: Progress,
) -> tuple[StageMonitor, dict]:
    """Every film of ``todo`` through ``stages``: in this process, or streamed on Ray."""
    if isinstance(ex, InlineExecutor):
        monitor = StageMonitor([s.name for s in stages])
        for path, film_id in todo:

            def seen(report: StageReport) -> None:
                monitor.finished_call(
                    report.stage, report.started, report.finished, report.film_seconds
                )

            progress.add(process_film(path, film_id, config, out, stages, on_report=seen))
            progress.tick(monitor)
        return monitor, {"executor": "inline"}
    from muss_builder.runtime.streaming import RayStreamingRunner

    runner = RayStreamingRunner(stages, config, out, monitor_tick=progress.tick)
    for result in runner.run(todo):
        progress.add(result)
    return runner.monitor, {"executor": "ray"} | runner.describe()


def run_stats(
    results: list[FilmResult],
    wall: float,
    config: PipelineConfig,
    executor: str,
    index_rows: list[dict],
) -> dict:
    """Totals and per-stage throughput of this run (resumed films did no work and add no time)."""
    worked = [r for r in results if not r.resumed and r.status != "failed"]
    film_seconds = sum(r.duration_seconds or 0.0 for r in worked)
    stage_seconds = {s: round(sum(r.timings.get(s, 0.0) for r in results), 4) for s in STAGES}
    return {
        "muss_builder_version": __version__,
        "pipeline": config.name,
        "config_hash": config.fingerprint(),
        "executor": executor,
        "wall_seconds": round(wall, 3),
        "films": {
            "inputs": len(results),
            "ok": sum(r.status == "ok" for r in results),
            "failed": sum(r.status == "failed" for r in results),
            "skipped": sum(r.status == "skipped" for r in results),
            "resumed": sum(r.resumed for r in results),
        },
        "failures": {r.path: r.reason for r in results if r.status == "failed"},
        "shots": sum(r.n_shots for r in results),
        "samples_this_run": sum(r.n_samples for r in results),
        "samples_in_index": len(index_rows),
        "samples_by_track": {
            track: sum(r["track"] == track for r in index_rows) for track in ("montage", "subject")
        },
        "references_in_index": sum(r["n_refs"] for r in index_rows),
        "captions": caption_stats(results),
        "film_seconds_processed": round(film_seconds, 3),
        "film_hours_per_wall_hour": round(film_seconds / wall, 3) if wall > 0 else None,
        "stage_seconds": stage_seconds,
        "stage_film_seconds_per_second": {
            s: (round(film_seconds / t, 3) if t > 0 else None) for s, t in stage_seconds.items()
        },
    }


def caption_stats(results: list[FilmResult]) -> dict | None:
    """The captioner's counters summed over this run's films, with throughput and the share
    of captions the consistency check still flags."""
    rows = [r.captions for r in results if r.captions]
    if not rows:
        return None
    total = {k: rows[0][k] for k in ("backend", "model")}
    for k, v in rows[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = round(sum(row[k] for row in rows), 4)
    seconds = total["model_seconds"]
    total["requests_per_second"] = round(total["requests"] / seconds, 3) if seconds else None
    total["completion_tokens_per_second"] = (
        round(total["completion_tokens"] / seconds, 3) if seconds else None
    )
    captions = total["captions"]
    total["caption_issue_rate"] = (
        round(total["captions_with_issues"] / captions, 4) if captions else 0.0
    )
    return total


def load_stats(out: str | Path) -> dict:
    return json.loads(Storage.open(str(out)).read_bytes("stats.json"))
