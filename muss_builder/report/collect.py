"""Collect a built dataset's numbers into one small data model: tables, film records, shards.

The tables give the per-sample and per-film numbers; the shot facts (scale, camera motion,
transitions) and the references' pose deltas exist only in the samples' ``.json`` members,
so every shard is read once (with the checking reader) for those.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import ValidationError

from muss_builder.core.naming import OutputLayout
from muss_builder.report.curation import CurationData, collect_curation
from muss_builder.report.scenes_page import ScenesData, collect_scenes
from muss_builder.samples.film_record import FilmRecord
from muss_builder.samples.records import Sample, validation_reason
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    ReaderLimits,
    ShardFormatError,
    ShardSample,
    iter_samples,
    load_sample_json,
)
from muss_builder.shards.schemas import schema_errors
from muss_builder.shards.untrusted import UntrustedJSONError, load_json, quoted

TRACKS = ("montage", "subject")
_MAX_RECORD_BYTES = 256 * 2**20  # as validate: a film record is large, never this large


class ReportInputError(ValueError):
    """The folder is not a readable dataset; the message says what is missing or broken."""


@dataclass
class FilmRow:
    """One input film as films.parquet lists it (with a short name for the table)."""

    film_id: str | None
    name: str
    path: str
    status: str
    reason: str | None
    resumed: bool
    duration_seconds: float | None
    n_shots: int
    n_samples: int
    n_shards: int
    attempts: int
    seconds_total: float


@dataclass
class Counts:
    """The headline numbers of the page."""

    films: int = 0
    films_ok: int = 0
    films_failed: int = 0
    films_skipped: int = 0
    samples: int = 0
    samples_by_track: dict[str, int] = field(default_factory=dict)
    shards: int = 0
    shard_bytes: int = 0
    film_seconds: float = 0.0  # source duration of the films that probed
    sample_seconds: float = 0.0  # clip time of the montage samples (subject ones reuse clips)
    shots_in_samples: int = 0  # shots of the montage samples
    references: int = 0
    film_subjects: int = 0


@dataclass
class ReportData:
    """Everything the page shows, as plain numbers and strings."""

    dataset: str
    counts: Counts
    films: list[FilmRow]
    # per sample, from index.parquet, keyed by track
    shots_per_sample: dict[str, list[int]]
    sample_seconds: dict[str, list[float]]
    subjects_per_sample: dict[str, list[int]]
    # per shot of the montage samples (every clip once)
    shot_seconds: list[float]
    global_caption_chars: list[int]
    shot_caption_chars: list[int]
    transitions: Counter[str]  # incoming transition of every shot after a sample's first
    shot_scales: Counter[str]
    camera_motions: Counter[str]
    # film level
    cluster_detections: list[int]  # detections per film subject id
    cluster_shots: list[int]  # shots per film subject id
    excluded_shots: Counter[str]  # reason code -> shots left out of every sample
    pose_deltas: list[float]  # degrees, one per face reference
    stats: dict[str, Any]
    shard_of: dict[str, str] = field(default_factory=dict)  # sample key -> shard, index order
    curation: CurationData = field(default_factory=CurationData)  # the funnel, from the records
    scenes: ScenesData = field(default_factory=ScenesData)  # scenes per film, from the records


def _read_table(path: Path, what: str) -> list[dict[str, Any]]:
    try:
        return pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on junk
        raise ReportInputError(f"{path}: cannot read the {what} table ({exc})") from exc


def _film_rows(rows: list[dict[str, Any]]) -> list[FilmRow]:
    films = []
    for r in rows:
        films.append(
            FilmRow(
                film_id=r.get("film_id"),
                name=Path(r["path"]).name or r["path"],
                path=r["path"],
                status=r["status"],
                reason=r.get("reason"),
                resumed=bool(r.get("resumed")),
                duration_seconds=r.get("duration_seconds"),
                n_shots=r.get("n_shots") or 0,
                n_samples=r.get("n_samples") or 0,
                n_shards=r.get("n_shards") or 0,
                attempts=r.get("attempts") or 0,
                seconds_total=r.get("seconds_total") or 0.0,
            )
        )
    # failures first: they are what a reader of a report looks for
    order = {"failed": 0, "skipped": 1, "ok": 2}
    films.sort(key=lambda f: (order.get(f.status, 3), f.name))
    return films


def _by_track(rows: list[dict[str, Any]], column: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {t: [] for t in TRACKS}
    for r in rows:
        value = r[column]
        found.setdefault(r["track"], []).append(len(value) if isinstance(value, list) else value)
    return found


def read_json_file(path: Path, what: str, limits: ReaderLimits = DEFAULT_LIMITS) -> Any:
    """A JSON file of the dataset (a film record, stats.json), size and depth bounded;
    ReportInputError says what is wrong."""
    size = path.stat().st_size
    if size > _MAX_RECORD_BYTES:
        raise ReportInputError(f"{path}: {what} of {size:,} bytes, over {_MAX_RECORD_BYTES:,}")
    try:
        return load_json(path.read_bytes(), limits.json_depth)
    except UntrustedJSONError as exc:
        raise ReportInputError(f"{path}: {what} unreadable ({exc})") from exc


def _film_records(
    layout: OutputLayout, films: list[FilmRow], limits: ReaderLimits
) -> list[FilmRecord]:
    """The records of the films that have one: every ok film, and skipped films that got
    as far as shot detection (a duplicate input shares its twin's record: read once)."""
    records: dict[str, FilmRecord] = {}
    for film in films:
        if film.status == "failed" or not film.film_id or film.film_id in records:
            continue
        path = layout.film_json(film.film_id)
        if film.status != "ok" and not path.is_file():
            continue
        try:
            doc = read_json_file(path, "film record", limits)
        except OSError as exc:
            raise ReportInputError(f"{path}: film record unreadable ({exc})") from exc
        errors = schema_errors("film", doc)
        if errors:  # the page reads its fields: refuse clearly rather than crash on a type
            raise ReportInputError(
                f"{path}: not a valid film record ({errors[0]}); run 'muss-builder validate'"
            )
        try:
            records[film.film_id] = FilmRecord.model_validate(doc)
        except ValidationError as exc:  # the schema and the model agree (tests): not expected
            raise ReportInputError(
                f"{path}: not a valid film record ({validation_reason(exc)})"
            ) from exc
    return list(records.values())


def _read_stats(layout: OutputLayout, limits: ReaderLimits) -> dict[str, Any]:
    try:
        stats = read_json_file(layout.stats, "stats", limits)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ReportInputError(f"{layout.stats}: unreadable ({exc})") from exc
    if not isinstance(stats, dict):
        raise ReportInputError(f"{layout.stats}: not a JSON object")
    return stats


def _shard_paths(layout: OutputLayout, shards: list[str]) -> list[Path]:
    """The paths of ``shards`` (names under shards/); ReportInputError names a missing one."""
    for name in shards:  # names from a table: never a path that leaves shards/
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ReportInputError(f"{layout.index}: shard name {quoted(name)} is not a file name")
    paths = [layout.shards / name for name in shards]
    for path in paths:
        if not path.is_file():
            raise ReportInputError(f"{path}: listed in index.parquet but missing")
    return paths


def valid_sample_json(sample: ShardSample, limits: ReaderLimits) -> dict[str, Any]:
    """The sample's metadata, valid against the sample schema (the page and the sheets read
    its fields); ShardFormatError names the member and the first schema error."""
    doc = load_sample_json(sample, limits)
    errors = schema_errors("sample", doc)
    if errors:
        raise ShardFormatError(
            sample.shard, sample.member_name("json"), f"not a valid sample document ({errors[0]})"
        )
    return doc


def valid_sample(sample: ShardSample, limits: ReaderLimits) -> Sample:
    """The sample's typed record; ShardFormatError names the member and what is wrong."""
    doc = valid_sample_json(sample, limits)
    try:
        return Sample.model_validate(doc)
    except ValidationError as exc:  # the schema and the model agree (tests): not expected
        reason = f"not a valid sample document ({validation_reason(exc)})"
        raise ShardFormatError(sample.shard, sample.member_name("json"), reason) from exc


def sample_records(shards: list[Path], limits: ReaderLimits = DEFAULT_LIMITS) -> Iterator[Sample]:
    """The records of every sample in ``shards``, one at a time: a large dataset's records
    together would not fit in memory (and only the ``.json`` members are read)."""
    for path in shards:
        try:
            for sample in iter_samples(path, limits, load=("json",)):
                yield valid_sample(sample, limits)
        except ShardFormatError as exc:
            raise ReportInputError(f"unreadable shard: {exc}") from exc


def _shot_facts(data: ReportData, samples: Iterable[Sample]) -> None:
    for sample in samples:
        for ref in sample.references:
            if ref.pose_delta >= 0:  # NO_POSE_DELTA (-1) for objects
                data.pose_deltas.append(float(ref.pose_delta))
        # each clip once: a sample serves both tracks (docs/layout.md)
        for n, shot in enumerate(sample.shots):
            if n > 0:
                data.transitions[shot.transition_in] += 1
            data.shot_scales[shot.facts.scale] += 1
            data.camera_motions[shot.facts.camera.kind] += 1  # "unknown" when not measured


def collect(dataset_dir: str | Path, limits: ReaderLimits = DEFAULT_LIMITS) -> ReportData:
    """Read the dataset at ``dataset_dir``; ReportInputError if it is not one."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise ReportInputError(f"{root}: not a folder")
    layout = OutputLayout(root)
    for table in (layout.films_table, layout.index):
        if not table.is_file():
            raise ReportInputError(
                f"{root}: not a muss-builder dataset (no {table.name}; build one with "
                "'muss-builder build')"
            )
    films = _film_rows(_read_table(layout.films_table, "films"))
    index = _read_table(layout.index, "index")
    records = _film_records(layout, films, limits)
    montage = [r for r in index if r["track"] == "montage"]
    shards = _shard_paths(layout, sorted({r["shard"] for r in index}))
    subjects = [s for rec in records for s in rec.subjects or []]
    counts = Counts(
        films=len(films),
        films_ok=sum(f.status == "ok" for f in films),
        films_failed=sum(f.status == "failed" for f in films),
        films_skipped=sum(f.status == "skipped" for f in films),
        samples=len({r["key"] for r in index}),  # a row per (sample, track)
        samples_by_track={t: sum(r["track"] == t for r in index) for t in TRACKS},
        shards=len(shards),
        shard_bytes=sum(path.stat().st_size for path in shards),
        film_seconds=sum(f.duration_seconds or 0.0 for f in films),
        sample_seconds=sum(r["duration_seconds"] for r in montage),
        shots_in_samples=sum(r["n_shots"] for r in montage),
        references=sum(r["n_refs"] for r in index),
        film_subjects=len(subjects),
    )
    data = ReportData(
        dataset=str(root),
        counts=counts,
        films=films,
        shots_per_sample=_by_track(index, "n_shots"),
        sample_seconds=_by_track(index, "duration_seconds"),
        subjects_per_sample=_by_track(index, "subjects"),
        shot_seconds=[d for r in montage for d in r["shot_durations"]],
        global_caption_chars=[r["global_caption_chars"] for r in montage],
        shot_caption_chars=[c for r in montage for c in r["shot_caption_chars"]],
        transitions=Counter(),
        shot_scales=Counter(),
        camera_motions=Counter(),
        cluster_detections=[s.n_detections for s in subjects],
        cluster_shots=[len(s.shots) for s in subjects],
        excluded_shots=Counter(reason for rec in records for reason in rec.excluded_shots.values()),
        pose_deltas=[],
        stats=_read_stats(layout, limits),
        shard_of={r["key"]: r["shard"] for r in index},
        curation=collect_curation(records, root),
        scenes=collect_scenes(records),
    )
    _shot_facts(data, sample_records(shards, limits))
    return data
