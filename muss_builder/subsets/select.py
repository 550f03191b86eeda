"""``select_build``: the samples of a finished build that match a WHERE clause, as a new
dataset of packed shards (members copied byte for byte, nothing re-encoded).

The subset is a packed folder, like ``pack``'s output, so every reader of packed shards
reads it (``expand_shard_list(SUBSET)``, the card's configs, webdataset)::

    SUBSET/
      {split}-{family}-{n:05d}.tar  the matching samples, film-mixed (the packer's seeded
                            interleave), in shard families by the tracks each sample serves
                            (its json's ``tracks``, whatever rows of it matched), as ``pack``
      index.parquet         the matching index rows, ``shard`` the subset's shard, plus
                            ``split`` and ``source_shard``
      films.parquet         the build's rows of the films with matching samples
      films/{film_id}.json  their film records (every shot and subject of the film)
      README.md             the dataset card (configs naming the subset's shards per split,
                            and per track)
      pipeline.yaml         the build's config; stats.json: its version, config hash, clause
      manifest.json         shards (samples, bytes, sha256), splits, the clause, the source

Splits are the packer's (a seeded hash of the film id), so with the same seed a film is in
the same split in the subset as in ``pack`` of the whole build: a subset never moves a test
film into train. The index may hold a sample under several rows (one per track): a sample is
copied once when any of its rows matches, and the index keeps the rows that matched.

Nothing partial is written: the build is checked first (``read_build``: every reason it is
incomplete), an empty selection is refused before any file, and the subset is written into a
hidden folder beside ``dest`` (a local staging folder for ``s3://``) that becomes ``dest`` only
when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from muss_builder.core.naming import FILMS_DIR
from muss_builder.core.storage import Storage, current_umask, json_bytes
from muss_builder.pack.families import FAMILIES, family_of, shard_rel, split_summary
from muss_builder.pack.films import FilmStream
from muss_builder.pack.packer import MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, PackOptions
from muss_builder.pack.plan import assign_splits, film_order, interleave, resolve_films
from muss_builder.pack.source import SourceBuild, SourceFilm, read_build
from muss_builder.pack.tarout import PackedShard, PackedShardWriter, sample_bytes
from muss_builder.report.card import PIPELINE_FILE, write_card
from muss_builder.shards.reader import Member
from muss_builder.subsets.where import filter_table


class EmptySelection(ValueError):
    """No sample of the build matches the clause (nothing is written)."""


@dataclass
class SelectResult:
    dest: str
    manifest: dict
    n_rows: int  # index rows that matched
    n_samples: int  # distinct samples copied


def _selected_films(build: SourceBuild, keys: pa.Array) -> list[tuple[SourceFilm, set[str]]]:
    """The films with selected samples, each with its selected keys."""
    film_ids = pc.utf8_slice_codeunits(keys, 0, 16)  # a key is {film_id}_{i:05d}
    wanted: dict[str, set[str]] = {}
    for film_id, key in zip(film_ids.to_pylist(), keys.to_pylist(), strict=True):
        wanted.setdefault(film_id, set()).add(key)
    return [(f, wanted[f.film_id]) for f in build.films if f.film_id in wanted]


def _key_families(index: pa.Table, keys: pa.Array) -> dict[str, str]:
    """The shard family of each selected sample, by all of its build index rows (the tracks
    it serves), not only the rows that matched."""
    rows = index.select(["key", "track"]).filter(pc.is_in(index["key"], value_set=keys))
    tracks: dict[str, set[str]] = {}
    for key, track in zip(rows["key"].to_pylist(), rows["track"].to_pylist(), strict=True):
        tracks.setdefault(key, set()).add(track)
    return {key: family_of(served) for key, served in tracks.items()}


class _Writer:
    """The shards of one split's family, cut at ``target_bytes`` (the last takes the rest)."""

    def __init__(
        self, store: Storage, split: str, family: str, staging: Path, target: int,
        on_shard: Callable[[PackedShard], None] | None,
    ) -> None:  # fmt: skip
        self.store, self.split, self.staging, self.target = store, split, staging, target
        self.family = family
        self.on_shard = on_shard
        self.shards: list[PackedShard] = []
        self.writer: PackedShardWriter | None = None
        self.size = 0

    def add(self, key: str, members: list[Member], source: IO[bytes] | None) -> None:
        weight = sample_bytes(members)
        if self.writer is not None and self.size + weight > self.target:
            self.close()
        if self.writer is None:
            rel = shard_rel(self.split, self.family, len(self.shards))
            self.writer = PackedShardWriter(self.store, rel, self.split, self.family, self.staging)
            self.size = 0
        self.writer.add(key, members, source)
        self.size += weight

    def close(self) -> None:
        if self.writer is not None:
            self.shards.append(self.writer.finish())
            self.writer = None
            if self.on_shard is not None:
                self.on_shard(self.shards[-1])

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def _copy_split(
    source: Storage,
    writers: dict[str, _Writer],
    films: list[tuple[SourceFilm, set[str]]],
    options: PackOptions,
    families: dict[str, str],
) -> None:
    """The selected samples of one split's films, each into its family's shards."""
    split = next(iter(writers.values())).split
    staging = next(iter(writers.values())).staging
    order = film_order([f for f, _ in films], options.seed)
    keys = {f.film_id: k for f, k in films}
    counts = [len(keys[f.film_id]) for f in order]
    streams: dict[int, FilmStream] = {}
    left = list(counts)
    try:
        for pick in interleave(counts, options.seed, split, options.window):
            stream = streams.get(pick)
            if stream is None:
                stream = FilmStream(source, order[pick], staging, options.verify)
                streams[pick] = stream
            while True:  # the film's next selected sample (the others are passed over)
                key, members = stream.next()
                if key in keys[order[pick].film_id]:
                    break
            writers[families[key]].add(key, members, stream.file)
            left[pick] -= 1
            if left[pick] == 0:
                streams.pop(pick).close()  # its remaining samples are not selected
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        for stream in streams.values():
            stream.close()


def _subset_index(rows: pa.Table, shards: list[PackedShard]) -> pa.Table:
    """The matching rows in the subset's order, ``shard`` the subset's shard."""
    where = {k: (s.name, s.split, i) for s in shards for i, k in enumerate(s.keys)}
    order = {s.name: n for n, s in enumerate(shards)}
    keys = rows["key"].to_pylist()
    rank = sorted(range(len(keys)), key=lambda r: (order[where[keys[r]][0]], where[keys[r]][2]))
    table = rows.take(pa.array(rank, pa.int64()))
    keys = table["key"].to_pylist()
    at = table.schema.get_field_index("shard")
    source_shard = table["shard"]
    table = table.set_column(at, "shard", pa.array([where[k][0] for k in keys], pa.string()))
    table = table.add_column(at + 1, "split", pa.array([where[k][1] for k in keys], pa.string()))
    return table.add_column(at + 2, "source_shard", source_shard)


def _manifest(
    build: SourceBuild, where_text: str, options: PackOptions, splits: dict[str, str],
    shards: list[PackedShard], films: list[tuple[SourceFilm, set[str]]], n_rows: int,
) -> dict:  # fmt: skip
    selected = {f.film_id for f, _ in films}
    entries = [{k: v for k, v in s.to_dict().items() if k != "keys"} for s in shards]
    per_split = {}
    for name in options.splits:
        n_films = sum(1 for f in selected if splits[f] == name)
        per_split[name] = split_summary(name, [e for e in entries if e["split"] == name], n_films)
    return {
        "format": MANIFEST_FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "seed": options.seed,
        "selection": {"where": where_text, "n_index_rows": n_rows},
        "source": {
            "root": build.root,
            "config_hashes": build.config_hashes,
            "fingerprint": build.fingerprint(),
            "n_films": len(build.films),
            "n_samples": build.n_samples,
        },
        "families": {family: list(tracks) for family, tracks in FAMILIES.items()},
        "splits": per_split,
        # as pack's manifest: without the key lists (index.parquet has them)
        "shards": entries,
        "films": {f: splits[f] for f in sorted(selected)},
    }


def _staging_for(dest: Storage) -> Path:
    if dest.remote:
        return Path(tempfile.mkdtemp(prefix="muss-select-"))
    root = Path(dest.root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"{root} exists and is not empty: pick a new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))


def _publish(staging: Path, dest: Storage) -> None:
    """The finished subset becomes ``dest``: a rename, or uploads with the manifest last."""
    if not dest.remote:
        root = Path(dest.root)
        if root.is_dir():
            root.rmdir()  # empty (checked before writing)
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private
        os.replace(staging, root)
        return
    if dest.exists(MANIFEST):
        raise ValueError(f"{dest.url(MANIFEST)}: a dataset is already there: pick a new prefix")
    files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != MANIFEST)
    for path in [*files, staging / MANIFEST]:
        dest.put_file(path, path.relative_to(staging).as_posix())


def select_build(
    source: str,
    where_text: str,
    dest: str,
    options: PackOptions | None = None,
    on_shard: Callable[[PackedShard], None] | None = None,
) -> SelectResult:
    """Write the samples of the build ``source`` whose index rows match ``where_text`` to
    ``dest`` (see the module docstring). Raises BuildRefused (an incomplete or invalid build),
    WhereError (a clause that does not parse or names no column), EmptySelection, ValueError
    (``dest`` not empty); nothing is written in any of these cases."""
    options = options or PackOptions()
    if Storage.open(source).exists(MANIFEST):
        raise ValueError(
            f"{source} is a packed folder or a subset: select takes a build (select from the "
            "build it was made of, with the conditions of both)"
        )
    build = read_build(source)
    rows = filter_table(build.index, where_text)
    if rows.num_rows == 0:
        raise EmptySelection(
            f"no sample of {build.root} matches {where_text!r} "
            f"({build.index.num_rows} index rows looked at): nothing written"
        )
    keys = pc.unique(rows["key"].combine_chunks())
    films = _selected_films(build, keys)
    families = _key_families(build.index, keys)
    test_ids = resolve_films(build.films, options.test_films)
    splits = assign_splits(build.films, options.splits, options.seed, test_ids)
    store = Storage.open(dest)
    staging = _staging_for(store)
    local = Storage.open(str(staging))
    target = options.target_bytes or 1_000_000_000
    try:
        shards: list[PackedShard] = []
        source_store = Storage.open(source)
        for split in options.splits:
            mine = [(f, k) for f, k in films if splits[f.film_id] == split]
            writers = {
                family: _Writer(local, split, family, staging / ".staging", target, on_shard)
                for family in FAMILIES
            }
            _copy_split(source_store, writers, mine, options, families)
            shards += [shard for writer in writers.values() for shard in writer.shards]
        shutil.rmtree(staging / ".staging", ignore_errors=True)
        _write_tables(source_store, local, build, rows, shards, films)
        manifest = _manifest(build, where_text, options, splits, shards, films, rows.num_rows)
        _write_card(source_store, local, manifest)
        local.write_bytes(MANIFEST, json_bytes(manifest))
        _publish(staging, store)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SelectResult(store.root, manifest, rows.num_rows, len(keys))


def _write_tables(
    source: Storage,
    local: Storage,
    build: SourceBuild,
    rows: pa.Table,
    shards: list[PackedShard],
    films: list[tuple[SourceFilm, set[str]]],
) -> None:
    ids = pa.array(sorted(f.film_id for f, _ in films), pa.string())
    index = _subset_index(rows, shards)
    local.write_bytes("index.parquet", _parquet(index))
    table = pq.read_table(pa.BufferReader(source.read_bytes("films.parquet")))
    table = table.filter(pc.is_in(table["film_id"], value_set=ids))
    local.write_bytes("films.parquet", _parquet(table))
    for film_id in ids.to_pylist():
        rel = f"{FILMS_DIR}/{film_id}.json"
        local.write_bytes(rel, source.read_bytes(rel))


def _write_card(source: Storage, local: Storage, manifest: dict) -> None:
    """The subset's dataset card (README.md), its pipeline config and a short stats.json."""
    if source.exists(PIPELINE_FILE):
        local.write_bytes(PIPELINE_FILE, source.read_bytes(PIPELINE_FILE))
    stats = json.loads(source.read_bytes("stats.json")) if source.exists("stats.json") else {}
    keep = ("muss_builder_version", "pipeline", "config_hash")
    subset = {k: stats[k] for k in keep if k in stats} | {"selection": manifest["selection"]}
    local.write_bytes("stats.json", json_bytes(subset))
    local.write_bytes(MANIFEST, json_bytes(manifest))  # the card reads it (rewritten last)
    write_card(local.root)


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
