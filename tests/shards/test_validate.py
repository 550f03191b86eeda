"""``validate_dataset``: the built dataset is clean; each kind of damage is reported clearly."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.shards.validate import check_dataset, validate_dataset

Members = dict[str, bytes]


@pytest.fixture
def dataset(built_dataset: BuildSummary, tmp_path: Path) -> Path:
    """A private copy of the built dataset that a test may damage."""
    return Path(shutil.copytree(built_dataset.out, tmp_path / "dataset"))


def _shards(root: Path) -> list[Path]:
    return sorted((root / "shards").glob("*.tar"))


def _multi_sample_shard(root: Path) -> Path:
    return next(p for p in _shards(root) if sum(1 for _ in iter_samples(p)) >= 2)


def _rewrite_shard(shard: Path, change: Callable[[str, Members], Members]) -> None:
    """Write the shard again with each sample's members passed through ``change``."""
    samples = [(s.key, change(s.key, dict(s.members))) for s in iter_samples(shard)]
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT) as tar:
        for key, members in samples:
            for ext in sorted(members):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(members[ext])
                tar.addfile(info, io.BytesIO(members[ext]))


def _find(problems: list[str], *words: str) -> list[str]:
    hits = [p for p in problems if all(w in p for w in words)]
    assert hits, f"no problem mentions {words}: {problems}"
    return hits


def test_built_dataset_is_valid(built_dataset: BuildSummary) -> None:
    report = check_dataset(built_dataset.out)
    assert report.problems == []
    assert report.n_shards == len(_shards(built_dataset.out))
    assert report.n_samples == built_dataset.n_index_rows > 0


def test_missing_folder_is_a_problem(tmp_path: Path) -> None:
    assert validate_dataset(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a folder"]


def test_schema_break_in_sample_json(dataset: Path) -> None:
    shard = _shards(dataset)[0]
    victim = next(iter_samples(shard)).key

    def break_schema(key: str, members: Members) -> Members:
        if key == victim:
            doc = json.loads(members["json"])
            del doc["n_shots"]
            doc["clip"]["codec"] = "vp9"
            members["json"] = json.dumps(doc).encode()
        return members

    _rewrite_shard(shard, break_schema)
    problems = validate_dataset(dataset)
    _find(problems, f"shards/{shard.name}: sample {victim}.json", "schema", "'n_shots'")
    _find(problems, f"sample {victim}.json", "schema", "clip/codec")
    # the rewritten shard no longer matches what its film record says
    _find(problems, f"films/{shard.name.split('-')[0]}.json: lists shard {shard.name}")


def test_index_with_a_row_removed(dataset: Path) -> None:
    index = dataset / "index.parquet"
    table = pq.read_table(index)
    removed = table.column("key")[0].as_py()
    shard = table.column("shard")[0].as_py()
    pq.write_table(table.slice(1), index)
    problems = validate_dataset(dataset)
    assert problems == [
        f"index.parquet: key {removed} (in shards/{shard}) is missing from the index"
    ]


def test_deleted_shard(dataset: Path) -> None:
    shard = _shards(dataset)[0]
    keys = [s.key for s in iter_samples(shard)]
    shard.unlink()
    problems = validate_dataset(dataset)
    _find(problems, "films/", f"lists shard {shard.name}, which does not exist")
    for key in keys:
        _find(problems, "index.parquet", key, f"shards/{shard.name}", "does not exist")


def test_stray_partial_file(dataset: Path) -> None:
    stray = dataset / "shards" / f".{_shards(dataset)[0].name}.partial-123"
    stray.write_bytes(b"half a shard")
    problems = validate_dataset(dataset)
    assert problems == [
        f"shards/{stray.name}: leftover partial shard (an interrupted writer; "
        "rerun the build or delete it)"
    ]


def test_mp4_replaced_by_a_clip_with_another_frame_count(dataset: Path) -> None:
    shard = _multi_sample_shard(dataset)
    samples = list(iter_samples(shard))
    frames = {s.key: load_sample_json(s)["clip"]["n_frames"] for s in samples}
    victim = samples[0].key
    donor = next(s for s in samples if frames[s.key] != frames[victim])

    def swap(key: str, members: Members) -> Members:
        if key == victim:
            members["mp4"] = donor.members["mp4"]
        return members

    _rewrite_shard(shard, swap)
    problems = validate_dataset(dataset)
    _find(
        problems,
        f"shards/{shard.name}: sample {victim}.mp4",
        f"has {frames[donor.key]} frames, the json says clip.n_frames = {frames[victim]}",
    )


def test_bad_shot_boundaries_and_key(dataset: Path) -> None:
    shard = _shards(dataset)[0]
    victim = next(iter_samples(shard)).key

    def shift(key: str, members: Members) -> Members:
        if key == victim:
            doc = json.loads(members["json"])
            doc["shots"][1]["clip_start_frame"] += 1
            doc["shots"][-1]["source_end_frame"] += 1
            doc["key"] = doc["key"][:-1] + "9"
            members["json"] = json.dumps(doc).encode()
        return members

    _rewrite_shard(shard, shift)
    problems = validate_dataset(dataset)
    where = f"shards/{shard.name}: sample {victim}.json"
    _find(problems, where, "shot 1 starts at clip frame")
    _find(problems, where, "last shot ends at source frame", "span ends at")
    _find(problems, where, "the tar key is")


def test_unreadable_shard(dataset: Path) -> None:
    shard = _multi_sample_shard(dataset)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    problems = validate_dataset(dataset)
    _find(problems, f"shards/{shard.name}: member", "truncated")
