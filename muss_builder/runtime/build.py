"""The build driver: inputs -> identify -> dedupe/resume -> film jobs -> tables and stats."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from muss_builder import __version__
from muss_builder.config import PipelineConfig
from muss_builder.core.interrupts import latched_interrupts
from muss_builder.core.storage import Storage, is_remote, json_bytes
from muss_builder.core.text import escape_path, utf8_text
from muss_builder.doctor import PreflightError, preflight
from muss_builder.media.probe import check_readable_file
from muss_builder.media.tools import MediaError
from muss_builder.report.card import write_card, write_pipeline
from muss_builder.runtime.buildlog import BuildLog
from muss_builder.runtime.curate_stage import close_registries, forget_film, registry_for
from muss_builder.runtime.executors import InlineExecutor, RayExecutor, TaskFailure, make_executor
from muss_builder.runtime.film_job import TIMING_BUCKETS, FilmResult
from muss_builder.runtime.inline import InlineRunner
from muss_builder.runtime.inputs import expand_inputs, identify, input_roots, shown_path
from muss_builder.runtime.layout import film_is_complete
from muss_builder.runtime.lock import BuildLock
from muss_builder.runtime.monitor import StageMonitor
from muss_builder.runtime.outdir import (
    clean_leftovers,
    fatal_cause,
    prepare_local,
    read_record,
    read_records,
)
from muss_builder.runtime.stage_base import Stage, StageSetupError, one_line
from muss_builder.runtime.stages import default_stages
from muss_builder.runtime.tables import earlier_film_rows, film_rows, index_rows, table_bytes
from muss_builder.samples.film_record import FilmRecord


@dataclass
class BuildSummary:
    out: Path | str  # a url when the output is on an object store
    results: list[FilmResult]
    stats: dict
    n_index_rows: int  # one per (sample, track): docs/layout.md

    @property
    def n_samples(self) -> int:
        """Distinct samples in the index (a sample serving both tracks has two rows)."""
        return int(self.stats.get("samples_in_index", self.n_index_rows))

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


@dataclass
class Progress:
    """Counters the CLI shows while films finish; ``on_film`` is called once per film."""

    total: int = 0
    on_film: Callable[[FilmResult, Progress], None] | None = None
    on_tick: Callable[[StageMonitor, Progress], None] | None = None  # per-stage live figures
    on_notice: Callable[[str], None] | None = None  # a lock taken over, a record set aside
    done: list[FilmResult] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def notice(self, text: str) -> None:
        if self.on_notice:
            self.on_notice(text)

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
            "duplicate": sum(r.status == "duplicate" for r in self.done),
            "shots": sum(r.n_shots for r in self.done),
            "samples": sum(r.n_samples for r in self.done),
            "film_seconds_per_wall_second": films_seconds / wall,
        }


@contextlib.contextmanager
def _registries_closed() -> Iterator[None]:
    """This process's duplicate-registry handles are dropped when the build ends, however."""
    try:
        yield
    finally:
        close_registries()


def _identify_or_fail(path: str) -> str | TaskFailure:
    try:
        return identify(path)
    except Exception as exc:  # a bad path is a failed row, not a crashed run
        return TaskFailure(str(exc))


class BuildStopped(Exception):
    """The build cannot go on (the disk is full, the Ray cluster is gone): one line for the
    user. Films finished before it are kept, and a rerun resumes."""


def _check_inputs(movies: list[str]) -> tuple[list[FilmResult], list[str]]:
    """Rows for inputs that cannot be films (missing, empty, a folder...) and the readable
    paths: found here, before any Ray cluster starts."""
    problems: list[FilmResult] = []
    readable: list[str] = []
    for cand in expand_inputs(movies):
        if not is_remote(cand.path):
            cand.path = str(Path(cand.path).absolute())
            if not cand.problem:
                try:
                    check_readable_file(Path(cand.path))
                except MediaError as exc:
                    cand.problem = str(exc)
        if cand.problem:
            problems.append(FilmResult(path=cand.path, film_id=None, reason=cand.problem))
        else:
            readable.append(cand.path)
    return problems, readable


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
    default pipeline (``stages.default_stages()``), e.g. with a stage of your own.

    Raises ``OutputError`` when ``out`` cannot take the build (another build holds it, it is
    read-only or a file), ``StageSetupError`` when a stage cannot start (a model that does not
    load), before any film, and ``BuildStopped`` when the build cannot go on (a full disk, a
    lost cluster); finished films are kept in every case."""
    started = time.perf_counter()
    # the stages name each film relative to the inputs given (runtime/inputs.shown_path)
    runtime = config.runtime.model_copy(update={"inputs": input_roots(movies)})
    config = config.model_copy(update={"runtime": runtime})
    store = Storage.open(str(out))
    if not store.remote:
        prepare_local(store.root)
    progress = progress or Progress()
    close_registries()  # the duplicate registry is read from this output's files, afresh
    with BuildLock(store) as lock, BuildLog(store) as log, _registries_closed():
        log.line(f"build by pid {os.getpid()}: {len(movies)} input(s), pipeline {config.name}")
        notes = [lock.note] if lock.note else []
        notes += [f"removed a leftover of a killed run: {rel}" for rel in clean_leftovers(store)]
        for note in notes:
            _tell(note, log, progress)
        ex_name = executor or config.runtime.executor
        try:
            monitor, runtime = _run(
                movies, store, config, ex_name, ray_address, num_cpus, progress, stages, log
            )
        except StageSetupError as exc:  # a config to fix: the tables are left as they were
            log.line(f"build stopped: {exc}")
            raise
        except BuildStopped as exc:
            log.line(f"build stopped: {exc}")
            # what finished is listed, if the disk allows; the first error is the one to tell
            with contextlib.suppress(OSError, BuildStopped):
                _write_tables(store, progress.done, log, progress, config.runtime.inputs)
            raise
        index_rows, records = _write_tables(
            store, progress.done, log, progress, config.runtime.inputs
        )
        wall = time.perf_counter() - started
        results = sorted(progress.done, key=lambda r: r.path)
        stats = run_stats(results, wall, config, ex_name, index_rows)
        stats["stages"] = monitor.summary(wall)
        stats["runtime"] = runtime
        # which reproducibility the output can promise: one mode per kind of film record
        stats["determinism"] = sorted({r.determinism or "unknown" for r in records})
        _stop_on_full_disk(lambda: store.write_bytes("stats.json", json_bytes(stats)))
        _stop_on_full_disk(lambda: write_pipeline(store.root, config))
        _stop_on_full_disk(lambda: write_card(store.root))
        log.line(f"build ended: {stats['films']}")
    out_root = store.root if store.remote else Path(store.root)
    return BuildSummary(out_root, results, stats, len(index_rows))


def _run(
    movies: list[str],
    store: Storage,
    config: PipelineConfig,
    ex_name: str,
    ray_address: str | None,
    num_cpus: int | None,
    progress: Progress,
    stages: list[Stage] | None,
    log: BuildLog,
) -> tuple[StageMonitor, dict]:
    """Identify the films, skip finished ones and run the rest; every row goes to
    ``progress`` (and the log) as it is known."""

    def add(result: FilmResult) -> None:
        if result.status == "failed" and result.film_id and config.filters.enabled:
            # a film that claimed its shots and then failed holds no footage in the dataset
            forget_film(store.root, config, result.film_id)
        progress.add(result)
        log.film(result)
        if result.fatal:  # the machine's failure, not the film's: every next film would fail
            raise BuildStopped(result.fatal)

    problems, readable = _check_inputs(movies)
    progress.total = len(problems) + len(readable)
    for r in problems:  # reported before a cluster starts (it can take a while)
        add(r)
    stages = stages or default_stages()
    if not readable:
        return StageMonitor([s.name for s in stages]), {"executor": ex_name}
    try:  # ffmpeg and every model's files, before a cluster starts (doctor checks the rest)
        preflight(config)
    except PreflightError as exc:
        raise StageSetupError(exc.stage, one_line(str(exc))) from exc
    with (
        latched_interrupts(),
        make_executor(
            ex_name,
            address=ray_address,
            num_cpus=num_cpus,
            max_in_flight=config.runtime.max_in_flight,
        ) as ex,
    ):
        ids = dict(ex.imap(_identify_or_fail, [(p,) for p in readable], num_cpus=0.5))
        todo: list[tuple[str, str]] = []
        first_path: dict[str, str] = {}
        for i, path in enumerate(readable):
            film_id = ids[i]
            if isinstance(film_id, TaskFailure):
                add(FilmResult(path=path, film_id=None, reason=film_id.message))
            elif film_id in first_path:
                why = f"duplicate of {escape_path(first_path[film_id])}"
                add(FilmResult(path, film_id, status="skipped", reason=why, attempts=0))
            else:
                first_path[film_id] = path
                # an unreadable record is set aside here, before its film is rebuilt over it
                # (records of films not given to this run are checked with the tables)
                record, set_aside = read_record(store, film_id)
                if set_aside:
                    _tell(f"unreadable film record set aside: {set_aside}", log, progress)
                if record is not None and film_is_complete(store, record, config.fingerprint()):
                    add(FilmResult.from_record(path, record, resumed=True))
                else:
                    todo.append((path, film_id))
        return _run_films(ex, todo, stages, config, store.root, progress, add)


def _tell(note: str, log: BuildLog, progress: Progress) -> None:
    """A note for the log and the live view (a lock taken over, a record set aside)."""
    log.line(note)
    progress.notice(note)


def _stop_on_full_disk(write: Callable[[], None]) -> None:
    try:
        write()
    except OSError as exc:
        why = fatal_cause(exc)
        if why is None:
            raise
        raise BuildStopped(why) from exc


def _write_tables(
    store: Storage, results: list[FilmResult], log: BuildLog, progress: Progress, roots: list[str]
) -> tuple[list[dict], list[FilmRecord]]:
    """films.parquet and index.parquet from the records on disk (see tables.py); returns the
    index rows and the records."""
    records = read_records(store)  # a record this run cannot read is set aside here too
    for q in records.quarantined:
        _tell(f"unreadable film record set aside: {q}", log, progress)
    earlier, problem = earlier_film_rows(store)
    if problem:
        _tell(problem, log, progress)
    for result in results:
        result.shown = result.shown or shown_path(result.path, roots)
    rows = film_rows(records, sorted(results, key=lambda r: r.path), earlier)
    index = index_rows(records)
    _stop_on_full_disk(lambda: store.write_bytes("films.parquet", table_bytes(rows, "films")))
    _stop_on_full_disk(lambda: store.write_bytes("index.parquet", table_bytes(index, "index")))
    return index, list(records.by_id.values())


def _run_films(
    ex: InlineExecutor | RayExecutor,
    todo: list[tuple[str, str]],
    stages: list[Stage],
    config: PipelineConfig,
    out: str,
    progress: Progress,
    add: Callable[[FilmResult], None],
) -> tuple[StageMonitor, dict]:
    """Every film of ``todo`` through ``stages``: in this process, or streamed on Ray."""
    if isinstance(ex, InlineExecutor):
        inline = InlineRunner(stages, config, out, monitor_tick=progress.tick)
        for result in inline.run(todo):
            add(result)
        return inline.monitor, {"executor": "inline"}
    from muss_builder.runtime.streaming import RayStreamingRunner, cluster_lost

    runner = RayStreamingRunner(stages, config, out, monitor_tick=progress.tick)
    if config.filters.duplicates_on:
        # the driver creates the registry actor, so the driver owns it: an actor dies with
        # its owner, and an owner on a worker node that is lost would take the registry (and
        # every later film's claim) with it; owned here, a lost node only restarts it.
        # Waiting for its first answer makes sure it is: creation is asynchronous, and on a
        # slow cluster a worker's get-if-exists could register the name first, own the actor
        # and take it down with its node (seen once under load: the driver's next call found
        # it "cancelled before it started running")
        registry_for(out, config, use_ray=True).n_shots()
    try:
        for result in runner.run(todo):
            add(result)
    except (BuildStopped, StageSetupError):
        raise
    except Exception as exc:
        why = cluster_lost(exc)
        if why is None:
            raise
        raise BuildStopped(why) from exc
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
    stage_seconds = {
        s: round(sum(r.timings.get(s, 0.0) for r in results), 4) for s in TIMING_BUCKETS
    }
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
            "duplicate": sum(r.status == "duplicate" for r in results),
            "resumed": sum(r.resumed for r in results),
        },
        "curation": curation_stats(results),
        "failures": {
            escape_path(r.shown or r.path): utf8_text(r.reason or "")
            for r in results
            if r.status == "failed"
        },
        "shots": sum(r.n_shots for r in results),
        "samples_this_run": sum(r.n_samples for r in results),
        # the index has one row per (sample, track): a sample serving both tracks counts in each
        "samples_in_index": len({r["key"] for r in index_rows}),
        "index_rows": len(index_rows),
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
        # what the workers warned about, per film (a GPU decoder or encoder that fell back)
        "warnings": {
            escape_path(r.path): [n.removeprefix("warning: ") for n in warned]
            for r in results
            if (warned := [n for n in r.notes if n.startswith("warning: ")])
        },
    }


def curation_stats(results: list[FilmResult]) -> dict | None:
    """The shot funnel over the films of this run (resumed ones from their records): shots
    in, kept, dropped by reason, and the films that were whole duplicates."""
    curated = [r for r in results if r.shots_kept is not None]
    if not curated:
        return None
    dropped: dict[str, int] = {}
    for r in curated:
        for flag, n in (r.dropped or {}).items():
            dropped[flag] = dropped.get(flag, 0) + n
    kept = sum(r.shots_kept or 0 for r in curated)
    return {
        "films": len(curated),
        "shots_in": kept + sum(r.shots_dropped or 0 for r in curated),
        "shots_kept": kept,
        "shots_dropped": sum(dropped.values()),
        "dropped": dict(sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))),
        "duplicate_films": sum(r.status == "duplicate" for r in curated),
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
