"""``validate_dataset``: check an output folder against the contract (see DESIGN "Output layout").

Every problem is collected rather than stopping at the first, so one run tells a user all
that is wrong. Messages start with the file (relative to the dataset folder), then the sample
key or member, then the reason. The shards and their samples are checked in
``validate_samples``; this module checks the folder around them: leftovers of killed runs,
set-aside records, the film records, and films.parquet, the records, index.parquet and the
shards against each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from muss_builder.core.naming import OutputLayout, is_leftover
from muss_builder.core.storage import file_sha256
from muss_builder.samples.film_record import FilmRecord, ShardRecord
from muss_builder.samples.records import validation_reason
from muss_builder.shards.reader import DEFAULT_LIMITS, ReaderLimits
from muss_builder.shards.schemas import schema_errors, table_schema
from muss_builder.shards.untrusted import UntrustedJSONError, load_json, printable
from muss_builder.shards.validate_samples import ValidationReport, check_shard

_MAX_RECORD_BYTES = 256 * 2**20  # a film record lists every shot: large, never this large
_PARTIAL = "leftover partial shard (an interrupted writer; rerun the build or delete it)"
_TEMPORARY = "leftover temporary file of an interrupted build (a rerun cleans it; or delete it)"
_QUARANTINED = "set aside by a build as unreadable (the film was rebuilt): look, then delete it"


@dataclass
class _Films:
    """What the film records say, for the cross-checks."""

    shards: set[str] = field(default_factory=set)  # every shard a record lists
    records: dict[str, FilmRecord] = field(default_factory=dict)  # film_id -> valid record


# ---------------------------------------------------------------------------- leftovers


def _check_folder(report: ValidationReport, folder: Path, prefix: str, suffix: str) -> None:
    """Only ``*{suffix}`` files belong in ``folder``: anything else is named."""
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        rel = f"{prefix}{path.name}"
        if ".partial" in path.name:
            report.add(rel, _PARTIAL)
        elif is_leftover(path.name):
            report.add(rel, _TEMPORARY)
        elif path.is_dir():
            report.add(rel, "unexpected folder")
        elif not path.name.endswith(suffix):
            report.add(rel, f"unexpected file (not a {suffix} file)")


def _check_leftovers(report: ValidationReport, layout: OutputLayout) -> None:
    """Temporary files of an interrupted writer, and records a build set aside: a finished
    build leaves none."""
    _check_folder(report, layout.shards, "shards/", ".tar")
    _check_folder(report, layout.films, "films/", ".json")
    for path in sorted(layout.root.iterdir()):
        if is_leftover(path.name, in_root=True):  # OUT/.lock is the running build's lock
            report.add(path.name, _TEMPORARY)
    quarantine = layout.root / "quarantine"
    for path in sorted(quarantine.rglob("*")) if quarantine.is_dir() else []:
        if not path.is_dir():
            report.add(str(path.relative_to(layout.root)), _QUARANTINED)


# ---------------------------------------------------------------------------- films


def _check_film_shard(
    report: ValidationReport, layout: OutputLayout, rel: str, entry: ShardRecord
) -> None:
    name = entry.name  # the schema's pattern makes it a plain {film_id}-{n}.tar name
    path = layout.shards / name
    if not path.is_file():
        report.add(rel, f"lists shard {name}, which does not exist")
        return
    size = path.stat().st_size
    if size != entry.size_bytes:
        report.add(rel, f"lists shard {name} with {entry.size_bytes} bytes; it has {size}")
    elif file_sha256(path) != entry.sha256:
        report.add(
            rel, f"lists shard {name} with sha256 {entry.sha256[:12]}...; its content differs"
        )
    found = report.shard_keys.get(name)
    if found is not None and found != entry.keys:
        report.add(rel, f"lists keys {entry.keys} in shard {name}; it holds {found}")


def _read_record(report: ValidationReport, path: Path, rel: str) -> FilmRecord | None:
    size = path.stat().st_size
    if size > _MAX_RECORD_BYTES:
        report.add(rel, f"{size:,} bytes, over the {_MAX_RECORD_BYTES:,}-byte limit of a record")
        return None
    try:
        doc = load_json(path.read_bytes(), report.limits.json_depth)
    except (OSError, UntrustedJSONError) as exc:
        report.add(rel, f"unreadable: {exc}")
        return None
    errors = schema_errors("film", doc)
    for error in errors[:10]:
        report.add(rel, f"schema: {error}")
    if errors:
        return None
    try:
        return FilmRecord.model_validate(doc)
    except ValidationError as exc:  # the schema and the model agree (tests): never expected
        report.add(rel, f"record: {validation_reason(exc)}")
        return None


def _record_problems(record: FilmRecord) -> list[str]:
    """A record's samples and its shards must name the same keys, each in its shard."""
    in_shards = {key: entry.name for entry in record.shards for key in entry.keys}
    problems = []
    for sample in record.samples:
        key, shard = sample.key, sample.shard
        if key not in in_shards:
            problems.append(f"sample {key} is in no shard the record lists")
        elif in_shards[key] != shard:
            problems.append(
                f"sample {key} is said to be in {shard}, its shard entry is in {in_shards[key]}"
            )
    for key in sorted(set(in_shards) - {s.key for s in record.samples}):
        problems.append(f"shard {in_shards[key]} holds {key}, which is not among its samples")
    keys = {s.key for s in record.samples}
    for shot in record.shots:  # a shot left out (a curation flag included) is in no sample
        held = getattr(shot, "sample_keys", None) or []
        if held and (held[0] != shot.sample_key or not set(held) <= keys):
            problems.append(
                f"shot {shot.index}: sample_keys {held} do not start with its sample_key "
                f"{shot.sample_key} or name samples the record does not list"
            )
        if shot.sample_key is not None and shot.excluded_reason is not None:
            problems.append(
                f"shot {shot.index} is in sample {shot.sample_key} but was left out "
                f"({shot.excluded_reason})"
            )
    return problems


def _check_films(report: ValidationReport, layout: OutputLayout) -> _Films:
    """Check every film record; return the shards they list and the valid records."""
    films = _Films()
    for path in sorted(layout.films.glob("*.json")) if layout.films.is_dir() else []:
        if path.name.startswith("."):
            continue  # a leftover, reported as such
        rel = f"films/{path.name}"
        record = _read_record(report, path, rel)
        if record is None:
            continue
        if record.film_id != path.stem:
            report.add(rel, f"film_id is {record.film_id}, the file name says {path.stem}")
            continue
        films.records[record.film_id] = record
        for problem in _record_problems(record):
            report.add(rel, problem)
        for entry in record.shards:
            films.shards.add(entry.name)
            _check_film_shard(report, layout, rel, entry)
    return films


# ---------------------------------------------------------------------------- tables


def _schema_problems(table: pa.Schema, expected: pa.Schema) -> list[str]:
    problems = []
    names = set(table.names)
    for f in expected:
        if f.name not in names:
            problems.append(f"column {f.name} is missing")
        elif table.field(f.name).type != f.type:
            problems.append(f"column {f.name} is {table.field(f.name).type}, expected {f.type}")
    problems += [f"unexpected column {n}" for n in table.names if n not in expected.names]
    return problems


def _read_table(report: ValidationReport, path: Path, name: str) -> pa.Table | None:
    rel = path.name
    if not path.is_file():
        report.add(rel, "missing")
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        report.add(rel, f"unreadable: {exc}")
        return None
    problems = _schema_problems(table.schema, table_schema(name))
    for problem in problems:
        report.add(rel, problem)
    return None if problems else table


def _check_index(report: ValidationReport, layout: OutputLayout) -> dict[str, str] | None:
    """Index against the shards; return the index as key -> shard (None if unreadable)."""
    table = _read_table(report, layout.index, "index")
    if table is None:
        return None
    keys, shards = table.column("key").to_pylist(), table.column("shard").to_pylist()
    tracks = table.column("track").to_pylist()
    # one row per (sample, track): a sample serving both tracks has two, in one shard
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    shard_of: dict[str, str] = {}
    indexed_tracks: dict[str, set[str]] = {}
    for key, shard, track in zip(keys, shards, tracks, strict=True):
        if (key, track) in seen:
            report.add("index.parquet", f"key {key} track {track} appears more than once")
        seen.add((key, track))
        indexed_tracks.setdefault(key, set()).add(track)
        if shard_of.setdefault(key, shard) != shard:
            report.add(
                "index.parquet", f"key {key}'s rows name two shards ({shard_of[key]}, {shard})"
            )
            continue
        if len(indexed_tracks[key]) == 1:
            pairs.append((key, shard))
    for key, served in sorted(report.tracks.items()):
        rows = indexed_tracks.get(key)
        if rows is not None and rows != set(served):
            report.add(
                "index.parquet",
                f"key {key} has rows for tracks {sorted(rows)}; its json serves {served}",
            )
    indexed = set(pairs)
    for key, shard in sorted(report.samples - indexed):
        report.add("index.parquet", f"key {key} (in shards/{shard}) is missing from the index")
    for key, shard in sorted(indexed - report.samples):
        if shard in report.bad_shards:
            continue  # already reported as an unreadable shard
        missing = not (layout.shards / shard).is_file()
        report.add(
            "index.parquet",
            f"key {key} points to shards/{shard}, which "
            + ("does not exist" if missing else "does not hold it"),
        )
    return dict(pairs)


def _check_index_against_records(
    report: ValidationReport, index: dict[str, str], films: _Films
) -> None:
    """Index rows come from the records' samples: the two must name the same keys."""
    in_records = {
        s.key: (s.shard, film_id)
        for film_id, record in films.records.items()
        for s in record.samples
    }
    in_shards = {key for key, _ in report.samples}
    for key in sorted(set(index) - set(in_records)):
        if index[key] not in films.shards and key in in_shards:
            continue  # its shard is listed by no record: said above
        report.add("index.parquet", f"key {key} is in no film record")
    for key in sorted(set(in_records) - set(index)):
        if key in in_shards:  # already said: missing from the index
            continue
        shard, film_id = in_records[key]
        report.add("index.parquet", f"key {key} of films/{film_id}.json is missing from the index")
    for key in sorted(set(index) & set(in_records)):
        shard, film_id = in_records[key]
        if index[key] != shard:
            report.add(
                "index.parquet",
                f"key {key} is in shards/{index[key]}; films/{film_id}.json says shards/{shard}",
            )


def _check_film_rows(
    report: ValidationReport, table: pa.Table, films: _Films, layout: OutputLayout
) -> None:
    """Every ok film has its record, and every record a row of its status."""
    statuses: dict[str, set[str]] = {}
    for row in table.select(["film_id", "path", "status"]).to_pylist():
        film_id, status = row["film_id"], row["status"]
        if film_id is not None:
            statuses.setdefault(film_id, set()).add(status)
        if status != "ok":
            continue
        where = f"film {film_id} ({printable(row['path'], 120)})"
        if film_id is None:
            report.add("films.parquet", f"{where} is ok but has no film_id")
        elif film_id not in films.records and not layout.film_json(film_id).is_file():
            report.add("films.parquet", f"{where} is ok, but films/{film_id}.json does not exist")
    for film_id, record in sorted(films.records.items()):
        if record.status not in statuses.get(film_id, set()):
            found = ", ".join(sorted(statuses.get(film_id, set()))) or "no row"
            report.add(
                f"films/{film_id}.json",
                f"the film is {record.status}, films.parquet has {found} for it",
            )


# ---------------------------------------------------------------------------- entry points


def check_dataset(out_dir: str | Path, limits: ReaderLimits = DEFAULT_LIMITS) -> ValidationReport:
    """Validate the dataset folder ``out_dir``; the report lists every problem found."""
    layout = OutputLayout(Path(out_dir))
    report = ValidationReport(root=layout.root, limits=limits)
    if not layout.root.is_dir():
        report.add(str(layout.root), "not a folder")
        return report
    if not layout.shards.is_dir():
        report.add("shards", "missing folder")
    if not layout.films.is_dir():
        report.add("films", "missing folder")
    shards = sorted(layout.shards.glob("*.tar")) if layout.shards.is_dir() else []
    shards = [s for s in shards if not s.name.startswith(".") and s.is_file()]
    report.n_shards = len(shards)
    for shard in shards:
        check_shard(report, shard)
    films = _check_films(report, layout)
    for shard in shards:
        if shard.name not in films.shards:
            report.add(
                f"shards/{shard.name}",
                "not listed by any films/*.json (a film that did not finish?)",
            )
    _check_leftovers(report, layout)
    index = _check_index(report, layout)
    if index is not None:
        _check_index_against_records(report, index, films)
    films_table = _read_table(report, layout.films_table, "films")
    if films_table is not None:
        _check_film_rows(report, films_table, films, layout)
    return report


def validate_dataset(out_dir: str | Path) -> list[str]:
    """Every problem of the dataset folder ``out_dir``; an empty list means it is valid."""
    return check_dataset(out_dir).problems
