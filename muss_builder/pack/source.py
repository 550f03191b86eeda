"""The build a pack reads: its films, their per-film shards and its index, checked first.

Packing an incomplete build would ship a dataset with films silently missing, so every check
that needs no shard bytes runs before anything is written, and all problems are reported at
once (``BuildRefused``), each naming the file, the film and why. Shard contents are checked
while they are copied (``packer``): sha256 against the record, keys against the record.

What is kept per film is small (ids, shard names, sizes, digests: ~200 bytes a shard): the
film records themselves, which list every shot, are parsed one at a time and dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from muss_builder.core.naming import FILMS_DIR, SHARDS_DIR, is_leftover, parse_film_record_path
from muss_builder.core.storage import Storage
from muss_builder.pack.families import CODES, FAMILIES, family_of
from muss_builder.samples.film_record import FilmRecord
from muss_builder.shards.writer import tar_member_bytes

_INDEX_COLUMNS = ("key", "film_id", "shard")
# a source shard's file is its members' bytes plus the end-of-archive blocks (1 KiB) and
# tarfile's padding to 10 KiB records (5 KiB on average): what packing does not carry over
TAR_OVERHEAD = 6 * 1024


class BuildRefused(ValueError):
    """The build cannot be packed; ``problems`` lists every reason found, one per line."""

    def __init__(self, root: str, problems: list[str]) -> None:
        self.root = root
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"cannot pack {root}: {len(self.problems)} problem(s)\n{shown}{more}")


def keys_digest(keys: list[str]) -> str:
    """A digest of a shard's ordered key list: checked against the tar without keeping keys."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


@dataclass(frozen=True)
class SourceShard:
    name: str
    size_bytes: int
    sha256: str
    n_samples: int
    keys_digest: str


@dataclass(frozen=True)
class SourceFilm:
    film_id: str
    source_name: str  # the input file's name (no folders), for --test-films by name
    n_samples: int
    shards: tuple[SourceShard, ...]
    # the shard family of each sample, in shard order, one letter each (``families.CODES``)
    families: str = ""
    # the samples' bytes per family (``families.FAMILIES`` order), estimated from the records
    family_bytes: tuple[int, ...] = ()

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.shards)

    def family_samples(self, family: str) -> int:
        return self.families.count(CODES[family])


@dataclass
class SourceBuild:
    root: str
    films: list[SourceFilm]  # sorted by film id
    index: pa.Table  # index.parquet as the build wrote it
    config_hashes: list[str]
    n_failed: int = 0  # films.parquet rows of films that failed (they have no samples)
    problems: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return sum(f.n_samples for f in self.films)

    def fingerprint(self) -> str:
        """Changes when any film or shard of the build does (a resume must not mix builds)."""
        digest = hashlib.sha256()
        for film in self.films:
            digest.update(film.film_id.encode())
            for shard in film.shards:
                digest.update(f"{shard.name}:{shard.sha256}".encode())
        return digest.hexdigest()


def _read_table(store: Storage, rel: str, problems: list[str]) -> pa.Table | None:
    if not store.exists(rel):
        problems.append(f"{rel}: missing (the build did not finish: rerun it)")
        return None
    try:
        return pq.read_table(pa.BufferReader(store.read_bytes(rel)))
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"{rel}: unreadable ({exc})")
        return None


def _film_of_record(store: Storage, rel: str, problems: list[str]) -> FilmRecord | None:
    try:
        record = FilmRecord.model_validate(json.loads(store.read_bytes(rel)))
    except (OSError, ValueError, RecursionError) as exc:  # ValidationError is a ValueError
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        problems.append(f"{rel}: not a readable film record ({reason[:200]})")
        return None
    if record.film_id != parse_film_record_path(rel):
        problems.append(f"{rel}: its film_id is {record.film_id}")
        return None
    return record


def _summarize(rel: str, record: FilmRecord, problems: list[str]) -> SourceFilm:
    """The film's shards as its record lists them (``_check_sizes`` looks at the files), and
    the shard family of each of its samples."""
    shards = []
    for entry in record.shards:
        shards.append(
            SourceShard(
                entry.name, entry.size_bytes, entry.sha256, len(entry.keys), keys_digest(entry.keys)
            )
        )
    in_shards = {key for entry in record.shards for key in entry.keys}
    in_samples = {s.key for s in record.samples}
    if in_shards != in_samples:
        odd = sorted(in_shards ^ in_samples)[:3]
        problems.append(f"{rel}: its samples and its shards' keys differ (e.g. {odd})")
    families, family_bytes = _families(rel, record, problems)
    name = PurePosixPath(record.probe.path or "").name
    return SourceFilm(record.film_id, name, len(in_samples), tuple(shards), families, family_bytes)


def _families(rel: str, record: FilmRecord, problems: list[str]) -> tuple[str, tuple[int, ...]]:
    """Each sample's family (by the tracks of its rows), in shard order, and the samples'
    bytes per family. A sample's bytes are estimated (only its clip's size is recorded): its
    clip, plus an equal part of what its shard holds besides the clips (jsons, reference
    strips, headers); an equal part of the whole shard when a clip size is missing."""
    tracks: dict[str, set[str]] = {}
    clips: dict[str, int | None] = {}
    for row in record.samples:
        tracks.setdefault(row.key, set()).add(str(row.track))
        clips[row.key] = row.clip_bytes
    codes: list[str] = []
    sizes = dict.fromkeys(FAMILIES, 0.0)
    for entry in record.shards:
        keys = entry.keys
        member_bytes = max(0, entry.size_bytes - TAR_OVERHEAD)
        clip = [clips.get(k) for k in keys]
        known = [tar_member_bytes(c) for c in clip if c is not None]
        rest = member_bytes - sum(known)
        for key, size in zip(keys, clip, strict=True):
            try:
                family = family_of(tracks.get(key, ()))
            except ValueError as exc:
                problems.append(f"{rel}: sample {key}: {exc}")
                family = "montage"
            codes.append(CODES[family])
            if len(known) == len(keys) and rest >= 0 and size is not None:
                sizes[family] += tar_member_bytes(size) + rest / len(keys)
            else:
                sizes[family] += member_bytes / max(1, len(keys))
    return "".join(codes), tuple(round(sizes[f]) for f in FAMILIES)


def _check_sizes(store: Storage, films: dict[str, SourceFilm], problems: list[str]) -> None:
    """Every shard a record lists exists with the recorded size. On an object store that is
    a request per shard, so 16 are in flight at a time (10,000 shards: seconds, not minutes)."""
    shards = [(film, shard) for film in films.values() for shard in film.shards]
    rels = [f"{SHARDS_DIR}/{shard.name}" for _, shard in shards]
    if store.remote:
        with ThreadPoolExecutor(max_workers=16) as pool:
            sizes = list(pool.map(store.size, rels))
    else:
        sizes = [store.size(rel) for rel in rels]
    for (film, shard), size in zip(shards, sizes, strict=True):
        where = f"{SHARDS_DIR}/{shard.name} (film {film.film_id})"
        record = f"{FILMS_DIR}/{film.film_id}.json"
        if size is None:
            problems.append(f"{where}: missing, though {record} lists it")
        elif size != shard.size_bytes:
            problems.append(f"{where}: {size} bytes, {record} says {shard.size_bytes}")


def _check_leftovers(store: Storage, listed: set[str], problems: list[str]) -> None:
    """A shard no record lists is a film a build is writing or left unfinished."""
    for rel in store.list(SHARDS_DIR, ".tar"):
        if rel.rsplit("/", 1)[-1] not in listed:
            problems.append(f"{rel}: listed by no film record (a film still being built?)")
    if not store.remote and os.path.isdir(os.path.join(store.root, SHARDS_DIR)):
        for entry in os.scandir(os.path.join(store.root, SHARDS_DIR)):
            if is_leftover(entry.name):
                problems.append(
                    f"{SHARDS_DIR}/{entry.name}: a leftover of an interrupted build (rerun it)"
                )


def _check_films_table(table: pa.Table, films: dict[str, SourceFilm], problems: list[str]) -> int:
    """Every film the build calls ok has its record; returns how many films failed."""
    failed = 0
    for row in table.select(["film_id", "path", "status"]).to_pylist():
        if row["status"] == "failed":
            failed += 1
        elif row["status"] == "ok" and row["film_id"] not in films:
            problems.append(
                f"{FILMS_DIR}/{row['film_id']}.json: missing, though films.parquet says "
                f"{PurePosixPath(row['path'] or '').name} is ok"
            )
    return failed


def _check_index(index: pa.Table, films: dict[str, SourceFilm], problems: list[str]) -> None:
    """index.parquet holds exactly the records' samples, each (key, track) once, in its film's
    shards (a sample serving both tracks has two rows: docs/layout.md)."""
    missing = [c for c in _INDEX_COLUMNS if c not in index.column_names]
    if missing:
        problems.append(f"index.parquet: no column {', '.join(missing)}")
        return
    pairs_of = ["key", "track"] if "track" in index.column_names else ["key"]
    if index.group_by(pairs_of).aggregate([]).num_rows != index.num_rows:
        problems.append(f"index.parquet: a ({', '.join(pairs_of)}) appears more than once")
    counts = index.group_by("film_id").aggregate([("key", "count_distinct")]).to_pylist()
    indexed = {row["film_id"]: row["key_count_distinct"] for row in counts}
    for film_id, film in films.items():
        if indexed.get(film_id, 0) != film.n_samples:
            problems.append(
                f"index.parquet: {indexed.get(film_id, 0)} samples of film {film_id}, its record "
                f"has {film.n_samples} samples (a stale index: rerun the build)"
            )
    for film_id in sorted(set(indexed) - set(films)):
        problems.append(f"index.parquet: rows of film {film_id}, which has no film record")
    pairs = index.group_by(["film_id", "shard"]).aggregate([]).to_pylist()
    for row in pairs:
        film = films.get(row["film_id"])
        if film is not None and row["shard"] not in {s.name for s in film.shards}:
            problems.append(
                f"index.parquet: film {row['film_id']}'s rows point to {row['shard']}, "
                "which its record does not list"
            )


def read_build(root: str) -> SourceBuild:
    """Read and check the build at ``root`` (a folder or url); BuildRefused lists every reason
    it cannot be packed."""
    store = Storage.open(root)
    problems: list[str] = []
    films: dict[str, SourceFilm] = {}
    hashes: set[str] = set()
    for rel in store.list(FILMS_DIR, ".json"):
        record = _film_of_record(store, rel, problems)
        if record is not None:
            films[record.film_id] = _summarize(rel, record, problems)
            hashes.add(str(record.pipeline.get("config_hash", "")))
    _check_sizes(store, films, problems)
    _check_leftovers(store, {s.name for f in films.values() for s in f.shards}, problems)
    n_failed = 0
    films_table = _read_table(store, "films.parquet", problems)
    if films_table is not None:
        n_failed = _check_films_table(films_table, films, problems)
    index = _read_table(store, "index.parquet", problems)
    if index is not None:
        _check_index(index, films, problems)
    if not films and not problems:
        problems.append(f"{FILMS_DIR}/: no film records (is {root} a build's output folder?)")
    if problems:
        raise BuildRefused(root, problems)
    assert index is not None
    ordered = [films[k] for k in sorted(films)]
    return SourceBuild(store.root, ordered, index, sorted(hashes), n_failed)
