"""``validate`` of what is not a build folder: a packed folder (``pack``'s or ``select``'s
output) or any shard list (files, globs, brace patterns, manifests, ``s3://`` urls).

A packed folder is checked against its manifest (every shard there, of the size and sha256
listed, holding the keys listed, its samples serving the tracks of its shard family) and its
index (every indexed key in the shard the index
names, every sample indexed); every sample of every shard gets the checks a build's samples
get (members, schema, clip, references), except that a packed shard mixes films. A shard on
an object store is downloaded to a temporary folder one at a time and deleted once read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from muss_builder.core.naming import film_of_shard
from muss_builder.core.storage import Storage, file_sha256
from muss_builder.pack.families import FAMILIES
from muss_builder.pack.shardlist import MANIFEST, expand_shard_list, local_shard
from muss_builder.shards.reader import DEFAULT_LIMITS, ReaderLimits
from muss_builder.shards.validate_samples import ValidationReport, check_shard


def is_packed_folder(target: str) -> bool:
    """A folder (or prefix) holding a pack's ``manifest.json``."""
    try:
        return Storage.open(target).exists(MANIFEST)
    except OSError:
        return False


def check_shard_list(
    specs: Sequence[str], limits: ReaderLimits = DEFAULT_LIMITS, split: str | None = None
) -> ValidationReport:
    """Every problem of the shards the specs name (FileNotFoundError naming missing ones)."""
    shards = expand_shard_list(list(specs), split=split)
    report = ValidationReport(root=Path("."), limits=limits)
    for location in shards:
        _check_one(report, location, location)
    return report


def _check_one(report: ValidationReport, location: str, rel: str) -> None:
    name = location.rstrip("/").rsplit("/", 1)[-1]
    report.n_shards += 1
    try:
        with local_shard(location) as path:
            check_shard(report, path, rel, per_film=film_of_shard(name) is not None)
    except OSError as exc:
        report.add(rel, f"cannot read: {exc}")


def check_packed(target: str, limits: ReaderLimits = DEFAULT_LIMITS) -> ValidationReport:
    """Every problem of a packed folder: manifest, shards, samples, index."""
    store = Storage.open(target)
    report = ValidationReport(root=Path(store.root), limits=limits)
    try:
        manifest = json.loads(store.read_bytes(MANIFEST))
        entries = list(manifest["shards"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.add(MANIFEST, f"not a readable pack manifest ({exc})")
        return report
    for entry in entries:
        name = str(entry.get("name"))
        size = store.size(name)
        if size is None:
            report.add(name, f"missing, though {MANIFEST} lists it")
            continue
        if size != entry.get("size_bytes"):
            report.add(name, f"{size} bytes, {MANIFEST} says {entry.get('size_bytes')}")
        report.n_shards += 1
        try:
            with local_shard(store.url(name)) as path:
                if file_sha256(path) != entry.get("sha256"):
                    report.add(name, f"its sha256 is not the one {MANIFEST} lists")
                check_shard(report, path, name, per_film=False)
        except OSError as exc:
            report.add(name, f"cannot read: {exc}")
            continue
        found = report.shard_keys.get(name, [])
        if found != entry.get("keys", found):
            report.add(name, f"its keys are not the {len(entry.get('keys', []))} {MANIFEST} lists")
        _check_family(report, name, entry.get("family"), found)
    listed = {str(e.get("name")) for e in entries}
    for rel in store.list("", ".tar"):
        if rel not in listed:
            report.add(rel, f"a shard {MANIFEST} does not list")
    _check_packed_index(report, store)
    return report


def _check_family(report: ValidationReport, name: str, family: object, keys: list[str]) -> None:
    """The samples of a shard of a family serve exactly the family's tracks."""
    if family is None:
        return  # packed before shards were cut by track
    if family not in FAMILIES:
        report.add(name, f"{MANIFEST} gives it the family {family!r}, not one of {list(FAMILIES)}")
        return
    for key in keys:
        tracks = report.tracks.get(key)
        if tracks is not None and set(tracks) != set(FAMILIES[str(family)]):
            report.add(name, f"sample {key} serves {tracks}, not the {family} family's tracks")


def _check_packed_index(report: ValidationReport, store: Storage) -> None:
    if not store.exists("index.parquet"):
        report.add("index.parquet", "missing")
        return
    try:
        index = pq.read_table(pa.BufferReader(store.read_bytes("index.parquet")))
        rows = set(zip(index["key"].to_pylist(), index["shard"].to_pylist(), strict=True))
    except (OSError, KeyError, pa.ArrowException) as exc:
        report.add("index.parquet", f"unreadable ({exc})")
        return
    in_shards = report.samples  # (key, shard name) as found
    for key, shard in sorted(rows - in_shards)[:20]:
        report.add("index.parquet", f"sample {key} is not in {shard}")
    indexed = {key for key, _ in rows}
    for key, shard in sorted(k for k in in_shards if k[0] not in indexed)[:20]:
        report.add(shard, f"sample {key} is in no index.parquet row")
