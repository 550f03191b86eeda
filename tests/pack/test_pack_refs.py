"""Packing a build with subject-track samples (reference crops: ``ref{k}.jpg`` members) of
real faces (``face_dataset``): every member of every sample, in its order, byte for byte."""

from __future__ import annotations

from pathlib import Path

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
    assert any(ext.startswith("ref") for members in packed.values() for ext, _ in members)
    assert result.manifest["splits"]["train"]["n_samples"] == len(source)
