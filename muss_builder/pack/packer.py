"""``pack_build``: a finished build -> uniform, film-mixed shards per split and shard family,
resumably.

Output (``OUT/packed/`` by default, or any folder or ``s3://`` prefix)::

    {split}-{family}-{n:05d}.tar  packed shards; the family is the tracks their samples serve
                                  (``families``: train-montage-00000.tar, train-both-00000.tar,
                                  train-subject-00000.tar, validation-both-00000.tar, ...)
    index.parquet                 the build's index rows, ``shard`` now the packed shard, plus
                                  ``split`` and ``source_shard``; in packed order
    manifest.json                 shards (family, samples, bytes, sha256), splits (per family
                                  and per track too), the split of every film, seed and
                                  options, the build's config hash; written last
    progress/                     one record per finished shard while packing (removed at the
                                  end)

Resume: each finished shard is published whole, then its progress record (its keys, and how
far into its family's share of the split it reaches) is written. A rerun with the same options
reads the records, keeps the shards they vouch for, replays the seeded order without reading
their samples, and writes the rest: the result is byte for byte what one uninterrupted run
writes. A rerun with other options, on a changed build or over a pack of an older layout is
refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from muss_builder.core.interrupts import latched_interrupts, stop_if_interrupted
from muss_builder.core.naming import FILMS_DIR, SHARDS_DIR
from muss_builder.core.storage import Storage, json_bytes
from muss_builder.pack.families import BY_CODE, FAMILIES, shard_rel, split_summary
from muss_builder.pack.films import FilmStream, PackError
from muss_builder.pack.plan import (
    DEFAULT_SPLITS,
    DEFAULT_WINDOW,
    Boundaries,
    assign_splits,
    film_order,
    interleave,
    resolve_films,
)
from muss_builder.pack.source import SourceBuild, SourceFilm, read_build
from muss_builder.pack.tarout import PackedShard, PackedShardWriter, sample_bytes

MANIFEST = "manifest.json"
INDEX = "index.parquet"
PROGRESS = "progress"
MANIFEST_FORMAT = "muss-builder/packed-shards"
# 2: shards in families by the tracks their samples serve ({split}-{family}-{n:05d}.tar)
MANIFEST_VERSION = 2

__all__ = ["PackError", "PackOptions", "PackResult", "pack_build"]


@dataclass(frozen=True)
class PackOptions:
    """How to pack. ``target_bytes`` and/or ``target_samples`` set the shard count of each
    split's shard family (N = the larger ceil(total / target)); shards are cut by bytes when
    a byte target is set."""

    target_bytes: int | None = 1_000_000_000
    target_samples: int | None = None
    seed: int = 0
    splits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLITS))
    test_films: tuple[str, ...] = ()  # film ids or input file names, always in test
    window: int = DEFAULT_WINDOW  # films open at once in the interleave
    verify: bool = True  # check every source shard's sha256 against its record

    def __post_init__(self) -> None:
        if not self.target_bytes and not self.target_samples:
            raise ValueError("give a target size in bytes or samples")
        for name, value in (("target_bytes", self.target_bytes), ("window", self.window)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.target_samples is not None and self.target_samples < 1:
            raise ValueError(f"target_samples must be positive, not {self.target_samples}")


@dataclass
class PackResult:
    dest: str
    manifest: dict
    resumed_shards: int  # kept from an interrupted run
    written_shards: int  # written by this run
    already_done: bool = False


@dataclass
class _Context:
    source: Storage
    store: Storage
    options: PackOptions
    run_key: str  # options + build: what a resumed pack must match
    staging: Path
    on_shard: Callable[[PackedShard], None] | None
    resumed: int = 0
    written: int = 0
    progress: dict[str, dict] | None = None  # the folder's progress records, once read


def _run_key(build: SourceBuild, options: PackOptions, test_ids: set[str]) -> str:
    doc = asdict(options) | {"test_films": sorted(test_ids), "build": build.fingerprint()}
    doc["manifest_version"] = MANIFEST_VERSION  # a pack of another layout is not resumed
    doc["splits"] = list(options.splits.items())  # their order places the share boundaries
    doc.pop("verify")  # checking or not does not change a byte
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _compact(record: dict) -> dict:
    """A progress record as kept in memory: its keys as one Arrow array (~30 bytes a key,
    not a Python string each), the shard entry without them."""
    shard = dict(record["shard"])
    keys = pa.array(shard.pop("keys"), pa.string())
    return {**record, "shard": shard, "keys": keys}


def _read_progress(ctx: _Context) -> dict[str, dict]:
    """Every progress record in the folder (compacted), by shard name: read once per run."""
    if ctx.progress is None:
        ctx.progress = {}
        for rel in ctx.store.list(PROGRESS, ".json"):
            record = json.loads(ctx.store.read_bytes(rel))
            if record.get("run_key") != ctx.run_key:
                raise ValueError(
                    f"{ctx.store.url(rel)}: an unfinished pack with other options, of another "
                    "build or of an older layout is in this folder: rerun with its options, or "
                    "delete it or pick another"
                )
            ctx.progress[record["shard"]["name"]] = _compact(record)
    return ctx.progress


def _progress(ctx: _Context, split: str, family: str) -> list[dict]:
    """The finished shards of ``split``'s ``family`` a resumed run may keep: the records, in
    order, up to the first whose shard is missing or of another size."""
    records = _read_progress(ctx)
    kept = []
    while (record := records.get(shard_rel(split, family, len(kept)))) is not None:
        if ctx.store.size(record["shard"]["name"]) != record["shard"]["size_bytes"]:
            break
        kept.append(record)
    return kept


def _publish(ctx: _Context, writer: PackedShardWriter, done: float) -> dict:
    shard = writer.finish()
    record = {"run_key": ctx.run_key, "done": done, "shard": shard.to_dict()}
    ctx.store.write_bytes(f"{PROGRESS}/{shard.name.removesuffix('.tar')}.json", json_bytes(record))
    ctx.written += 1
    if ctx.on_shard is not None:
        ctx.on_shard(shard)
    return _compact(record)


@dataclass
class _Lane:
    """One shard family of a split: its plan, its finished shards, the shard being written."""

    family: str
    bounds: Boundaries
    records: list[dict]  # finished shards (kept from an interrupted run, then written)
    kept: int  # the family's samples in kept shards: a resumed run passes over them
    done: float  # the family's weight in finished shards and the one being written
    met: int = 0  # the family's samples met so far in the split's order
    writer: PackedShardWriter | None = None

    @classmethod
    def open(cls, ctx: _Context, split: str, family: str, films: list[SourceFilm]) -> _Lane:
        at = list(FAMILIES).index(family)
        n_samples = sum(f.family_samples(family) for f in films)
        n_bytes = sum(f.family_bytes[at] for f in films)
        bounds = Boundaries.for_totals(
            n_samples, n_bytes, ctx.options.target_bytes, ctx.options.target_samples
        )
        records = _progress(ctx, split, family)
        ctx.resumed += len(records)
        kept = sum(r["shard"]["n_samples"] for r in records)
        return cls(family, bounds, records, kept, records[-1]["done"] if records else 0)

    def add(self, ctx: _Context, split: str, key: str, members: list, source: IO[bytes] | None):
        weight = self.bounds.weight(sample_bytes(members))
        if self.writer is not None and self.bounds.cut_before(
            len(self.records), self.done, weight, False
        ):
            self.records.append(_publish(ctx, self.writer, self.done))
            self.writer = None
        if self.writer is None:
            rel = shard_rel(split, self.family, len(self.records))
            self.writer = PackedShardWriter(ctx.store, rel, split, self.family, ctx.staging)
        self.writer.add(key, members, source)
        self.done += weight

    def finish(self, ctx: _Context) -> None:
        if self.writer is not None:
            self.records.append(_publish(ctx, self.writer, self.done))
            self.writer = None


def _pack_split(ctx: _Context, split: str, films: list[SourceFilm]) -> list[dict]:
    """Write (or keep, when resuming) the shards of one split; their progress records.

    One pass over the split's seeded sample order: each sample goes to the shard being
    written for its family, so every source shard is read once and each family's shards hold
    its samples in that (film-mixed) order. A resumed run passes over each family's samples in
    kept shards without reading them, and reads a film only for samples still to write."""
    order = film_order(films, ctx.options.seed)
    counts = [f.n_samples for f in order]
    lanes = {family: _Lane.open(ctx, split, family, order) for family in FAMILIES}
    streams: dict[int, FilmStream] = {}
    taken = [0] * len(order)  # samples of each film already in the stream
    try:
        for film in interleave(counts, ctx.options.seed, split, ctx.options.window):
            stop_if_interrupted()
            at = taken[film]
            taken[film] += 1
            lane = lanes[BY_CODE[order[film].families[at]]]
            lane.met += 1
            if lane.met > lane.kept:  # not in a kept shard: read it and write it
                stream = streams.get(film)
                if stream is None:
                    stream = FilmStream(ctx.source, order[film], ctx.staging, ctx.options.verify)
                    streams[film] = stream
                stream.skip_to(at)
                key, members = stream.next()
                lane.add(ctx, split, key, members, stream.file)
            if taken[film] == counts[film] and film in streams:
                streams[film].skip_to(counts[film])
                streams.pop(film).finish()
        for lane in lanes.values():
            lane.finish(ctx)
    finally:
        for lane in lanes.values():
            if lane.writer is not None:
                lane.writer.abort()
        for stream in streams.values():
            stream.close()
    return [record for lane in lanes.values() for record in lane.records]


def _packed_index(build: SourceBuild, records: list[dict]) -> pa.Table:
    """The build's index rows in packed order, pointing at the packed shards: every row of a
    key (one per track it serves, docs/layout.md) follows its sample, which was copied once."""
    keys = pa.chunked_array([r["keys"] for r in records], pa.string()).combine_chunks()
    shards = pa.array([r["shard"]["name"] for r in records for _ in range(len(r["keys"]))])
    splits = pa.array([r["shard"]["split"] for r in records for _ in range(len(r["keys"]))])
    index = build.index
    if pc.any(pc.invert(pc.is_in(keys, value_set=index["key"].combine_chunks()))).as_py():
        raise RuntimeError("a packed key is not in the build's index")  # read_build checks it
    placed = pa.table(
        {
            "key": keys,
            "_shard": shards.cast(pa.string()),
            "split": splits.cast(pa.string()),
            "_order": pa.array(range(len(keys)), pa.int64()),
        }
    )
    # the build's rows with their position in the build, so the joined rows keep its columns'
    # order and each key's rows their build order (montage first)
    numbered = pa.table(  # keys and row numbers only: Arrow joins no list column
        {"key": index["key"], "_row": pa.array(range(index.num_rows), pa.int64())}
    )
    joined = numbered.join(placed, "key", join_type="inner").sort_by(
        [("_order", "ascending"), ("_row", "ascending")]
    )
    table = index.take(joined["_row"])
    at = table.schema.get_field_index("shard")
    table = table.set_column(at, "shard", joined["_shard"])
    table = table.add_column(at + 1, "split", joined["split"])
    return table.add_column(at + 2, "source_shard", index["shard"].take(joined["_row"]))


def _manifest(
    build: SourceBuild, ctx: _Context, splits: dict[str, str], records: list[dict]
) -> dict:
    shards = [r["shard"] for r in records]
    per_split = {}
    for name in ctx.options.splits:
        # films with samples in the split ("films" maps every film, empty ones too)
        n_films = sum(1 for f in build.films if f.n_samples and splits[f.film_id] == name)
        per_split[name] = split_summary(name, [s for s in shards if s["split"] == name], n_films)
    unique = build.config_hashes[0] if len(build.config_hashes) == 1 else None
    options = asdict(ctx.options)
    options.pop("verify")
    options["test_films"] = list(options["test_films"])  # as JSON reads it back
    return {
        "format": MANIFEST_FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "seed": ctx.options.seed,
        "options": options,
        "run_key": ctx.run_key,
        "source": {
            "config_hash": unique,
            "config_hashes": build.config_hashes,
            "fingerprint": build.fingerprint(),
            "n_films": len(build.films),
            "n_samples": build.n_samples,
            "n_failed_films": build.n_failed,
        },
        "families": {family: list(tracks) for family, tracks in FAMILIES.items()},
        "splits": per_split,
        "shards": shards,
        "films": splits,
    }


def _finished(store: Storage, run_key: str) -> dict | None:
    """The manifest of a pack already finished in ``store`` with these options, else None."""
    if not store.exists(MANIFEST):
        return None
    manifest = json.loads(store.read_bytes(MANIFEST))
    if manifest.get("run_key") != run_key:
        raise ValueError(
            f"{store.url(MANIFEST)}: a pack with other options, of another build or of an "
            "older layout is already there: delete it or pick another destination"
        )
    return manifest


def _check_dest(source: str, dest: str) -> None:
    """The pack's index.parquet and tars must not land on the build's own files."""
    if "://" not in source and "://" not in dest:  # local: "out" and "./out/" are one folder
        source, dest = os.path.abspath(source), os.path.abspath(dest)
    for part in ("", f"/{SHARDS_DIR}", f"/{FILMS_DIR}"):
        if dest == f"{source}{part}" or (part and dest.startswith(f"{source}{part}/")):
            raise ValueError(
                f"cannot pack into {dest}: it is the build's own folder{part or ''} "
                "(use the default OUT/packed or another folder)"
            )


def _remove_leftovers(store: Storage) -> None:
    """Hidden partial shards of a killed local run (uploads leave none: objects are whole)."""
    if store.remote or not os.path.isdir(store.root):
        return
    for entry in os.scandir(store.root):
        if entry.name.startswith(".") and ".tar.partial-" in entry.name:
            os.unlink(entry.path)


def pack_build(
    source: str,
    dest: str | None = None,
    options: PackOptions | None = None,
    on_shard: Callable[[PackedShard], None] | None = None,
) -> PackResult:
    """Pack the finished build at ``source`` into ``dest`` (default ``{source}/packed``).

    Raises ``BuildRefused`` (nothing written) for an incomplete or invalid build, ValueError
    for bad options, ``PackError`` when a source shard differs from its record (shards
    finished so far are kept for a rerun). ``on_shard`` is called after each shard is
    published (progress reporting).
    """
    options = options or PackOptions()
    build = read_build(source)
    test_ids = resolve_films(build.films, options.test_films)
    splits = assign_splits(build.films, options.splits, options.seed, test_ids)
    dest = dest or f"{source.rstrip('/')}/packed"
    store = Storage.open(dest)
    _check_dest(Storage.open(source).root, store.root)
    run_key = _run_key(build, options, test_ids)
    done = _finished(store, run_key)
    if done is not None:
        return PackResult(store.root, done, len(done["shards"]), 0, already_done=True)
    _remove_leftovers(store)
    staging = Path(tempfile.mkdtemp(prefix="muss-pack-"))
    ctx = _Context(Storage.open(source), store, options, run_key, staging, on_shard)
    try:
        with latched_interrupts():  # a Ctrl-C a finaliser swallows still stops the pack
            records = []
            for split in options.splits:
                members = [f for f in build.films if splits[f.film_id] == split]
                records += _pack_split(ctx, split, members)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sink = pa.BufferOutputStream()
    pq.write_table(_packed_index(build, records), sink)
    store.write_bytes(INDEX, sink.getvalue().to_pybytes())
    manifest = _manifest(build, ctx, splits, records)
    store.write_bytes(MANIFEST, json_bytes(manifest))  # last: it marks the pack finished
    for rel in store.list(PROGRESS, ".json"):
        store.remove(rel)
    if not store.remote:
        with_progress = Path(store.url(PROGRESS))
        if with_progress.is_dir() and not any(with_progress.iterdir()):
            with_progress.rmdir()
    return PackResult(store.root, manifest, ctx.resumed, ctx.written)
