"""Packing a build with samples serving the subject track (reference crops in the ``refs.jpg``
strip) of real faces (``face_dataset``): every member of every sample, in its order, byte for
byte, each sample once, and the packed index keeps one row per (sample, track)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples


def _members(shards: list[Path]) -> dict[str, list[tuple[str, bytes]]]:
    found: dict[str, list[tuple[str, bytes]]] = {}
    for shard in shards:
        for sample in iter_samples(shard):
            assert sample.key not in found
            found[sample.key] = [(ext, sample.members[ext]) for ext in sample.entries]
    return found


def test_reference_members_round_trip(face_dataset: BuildSummary, tmp_path: Path) -> None:
    result = pack_build(
        str(face_dataset.out),
        str(tmp_path),
        PackOptions(None, target_samples=2, splits={"train": 1.0}),
    )
    source = _members(sorted((face_dataset.out / "shards").glob("*.tar")))
    packed = _members(sorted(tmp_path.glob("train-*.tar")))
    assert packed == source
    assert all(ext == "refs.jpg" for m in packed.values() for ext, _ in m if ext.endswith("jpg"))
    assert result.manifest["splits"]["train"]["n_samples"] == len(source)
    # each sample copied once, its index rows (one per track it serves) kept
    built = pq.read_table(face_dataset.out / "index.parquet").to_pylist()
    index = pq.read_table(tmp_path / "index.parquet").to_pylist()
    assert sorted((r["key"], r["track"]) for r in index) == sorted(
        (r["key"], r["track"]) for r in built
    )
    assert {r["track"] for r in index} == {"montage", "subject"}
    assert len(index) > len(packed)
