"""The output folder at the start and end of a build: checks, leftovers, film records.

Run only by the build that holds ``OUT/.lock``: it removes what killed runs left (dot-named
temporaries), sets aside film records it cannot read, and builds the tables from the records.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from muss_builder.core.naming import is_leftover
from muss_builder.core.storage import Storage
from muss_builder.media.tools import MediaError
from muss_builder.runtime.lock import LOCK_NAME, OutputError
from muss_builder.samples.film_record import FilmRecord
from muss_builder.samples.records import validation_reason
from muss_builder.shards.schemas import table_schema

QUARANTINE = "quarantine/films"


# Errors of the machine, not of the film: every later film would fail the same way.
_FATAL_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def fatal_cause(exc: BaseException) -> str | None:
    """Why ``exc`` must stop the build rather than fail one film (a full disk), else None."""
    if isinstance(exc, OSError) and exc.errno in _FATAL_ERRNOS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{_FATAL_ERRNOS[exc.errno]}{where}"
    if isinstance(exc, MediaError) and "No space left on device" in str(exc):
        return "no space left on device (ffmpeg could not write its output)"
    return None


def prepare_local(root: str) -> None:
    """Create a local output folder, or say in one line why it cannot be one."""
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise OutputError(f"--out {root} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Creating the lock file is the first write: a read-only folder is found here.
        os.close(os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666))
    except NotADirectoryError as exc:
        raise OutputError(f"--out {root}: a part of the path is a file ({exc.filename})") from exc
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT):
            raise OutputError(f"cannot write to --out {root}: {exc.strerror}") from exc
        raise
    for sub in ("shards", "films"):
        (path / sub).mkdir(exist_ok=True)


def clean_leftovers(store: Storage) -> list[str]:
    """Remove the temporaries of killed runs (``naming.is_leftover``); return their paths
    relative to the root."""
    if store.remote:  # objects appear whole: a killed upload leaves nothing visible
        return []
    root = Path(store.root)
    removed = []
    for folder in ("shards", "films", ""):
        base = root / folder
        if not base.is_dir():
            continue
        for entry in os.scandir(base):
            if entry.is_file(follow_symlinks=False) and is_leftover(entry.name, not folder):
                os.unlink(entry.path)
                removed.append(f"{folder}/{entry.name}" if folder else entry.name)
    return sorted(removed)


@dataclass
class Records:
    """The readable film records of the output, and those set aside."""

    by_id: dict[str, FilmRecord] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)  # "films/x.json -> quarantine/..: why"


def record_problem(rel: str, data: bytes) -> tuple[FilmRecord | None, str | None]:
    """The record in ``data``, or why the tables cannot use it."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    film_id = rel.rsplit("/", 1)[-1].removesuffix(".json")
    if record.get("film_id") != film_id:
        return None, f"its film_id is {record.get('film_id')!r}, not {film_id!r}"
    try:
        probe = record["probe"]
        for key in ("duration_seconds", "fps", "width", "height"):
            probe[key]
        for key in ("status", "shots", "samples", "shards", "pipeline"):
            record[key]
        for shard in record["shards"]:
            shard["name"], shard["size_bytes"]
        schema = table_schema("index")
        # a nullable column (a curation measure) may be missing from an older record
        rows = [
            {f.name: s.get(f.name) if f.nullable else s[f.name] for f in schema}
            for s in record["samples"]
        ]
        pa.Table.from_pylist(rows, schema=schema)
    except (KeyError, TypeError, IndexError) as exc:
        return None, f"wrong shape ({type(exc).__name__}: {exc})"
    except (pa.ArrowException, UnicodeError, ValueError) as exc:
        return None, f"samples do not fit index.parquet ({exc})"
    try:
        return FilmRecord.model_validate(record), None
    except ValidationError as exc:
        return None, f"not a film record ({validation_reason(exc)})"


def read_records(store: Storage) -> Records:
    """Every film record; one that cannot be read is moved to quarantine/films/ (its film is
    then rebuilt, as it has no record) and reported, never fatal to the tables."""
    records = Records()
    for rel in store.list("films", ".json"):
        record, note = _read_or_set_aside(store, rel)
        if record is not None:
            records.by_id[record.film_id] = record
        elif note:
            records.quarantined.append(note)
    return records


def read_record(store: Storage, film_id: str) -> tuple[FilmRecord | None, str | None]:
    """The record of one film (None when it has none), or None and what was set aside: the
    same checks as ``read_records``, for the film a build is about to resume or rebuild."""
    return _read_or_set_aside(store, f"films/{film_id}.json")


def _read_or_set_aside(store: Storage, rel: str) -> tuple[FilmRecord | None, str | None]:
    try:
        data = store.read_bytes(rel)
    except FileNotFoundError:
        return None, None
    record, problem = record_problem(rel, data)
    if record is not None:
        return record, None
    return None, f"{rel} -> {_quarantine(store, rel, data)}: {problem}"


def _quarantine(store: Storage, rel: str, data: bytes) -> str:
    name = rel.rsplit("/", 1)[-1]
    target, n = f"{QUARANTINE}/{name}", 1
    while store.exists(target):  # an earlier one set aside under that name is kept too
        n += 1
        target = f"{QUARANTINE}/{name.removesuffix('.json')}.{n}.json"
    store.write_bytes(target, data)
    store.remove(rel)
    return target
