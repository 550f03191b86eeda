"""``validate_dataset``: the built dataset is clean; each kind of damage is reported clearly."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
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


def _film_of(dataset: Path) -> tuple[str, list[Path]]:
    """A film of the dataset and its shards."""
    film_id = _shards(dataset)[0].name.split("-")[0]
    return film_id, sorted((dataset / "shards").glob(f"{film_id}-*.tar"))


def test_ok_film_whose_record_and_shards_are_gone(dataset: Path) -> None:
    # what a second build into the same folder did: the film's outputs deleted, the index
    # rebuilt from the remaining records, films.parquet still saying ok (validate said ok)
    film_id, shards = _film_of(dataset)
    (dataset / "films" / f"{film_id}.json").unlink()
    for shard in shards:
        shard.unlink()
    index = pq.read_table(dataset / "index.parquet")
    rows = [r for r in index.to_pylist() if r["film_id"] != film_id]
    pq.write_table(pa.Table.from_pylist(rows, schema=index.schema), dataset / "index.parquet")
    (row,) = [
        r for r in pq.read_table(dataset / "films.parquet").to_pylist() if r["film_id"] == film_id
    ]
    assert validate_dataset(dataset) == [
        f"films.parquet: film {film_id} ({row['path']}) is ok, but films/{film_id}.json "
        "does not exist"
    ]


def test_leftovers_of_killed_runs_and_set_aside_records(dataset: Path) -> None:
    film_id, _ = _film_of(dataset)
    strays = {
        f"shards/{film_id}-00000.tar.tmp": "leftover temporary file",
        "shards/.whatever": "leftover temporary file",
        f"films/.{film_id}.json.123.part": "leftover temporary file",
        ".index.parquet.tmp-77": "leftover temporary file",
        f"quarantine/films/{film_id}.json": "set aside by a build as unreadable",
        "shards/notes.txt": "unexpected file (not a .tar file)",
    }
    for rel in strays:
        (dataset / rel).parent.mkdir(parents=True, exist_ok=True)
        (dataset / rel).write_bytes(b"{")
    (dataset / ".lock").write_text("{}")  # a build's lock is not a leftover
    problems = validate_dataset(dataset)
    for rel, reason in strays.items():
        _find(problems, f"{rel}: {reason}")
    assert len(problems) == len(strays)


def test_films_table_and_records_disagree(dataset: Path) -> None:
    film_id, _ = _film_of(dataset)
    films = pq.read_table(dataset / "films.parquet")
    rows = films.to_pylist()
    for row in rows:
        if row["film_id"] == film_id:
            row["status"] = "failed"
    pq.write_table(pa.Table.from_pylist(rows, schema=films.schema), dataset / "films.parquet")
    record_path = dataset / "films" / f"{film_id}.json"
    record = json.loads(record_path.read_text())
    dropped = record["samples"].pop()["key"]
    record_path.write_text(json.dumps(record))
    problems = validate_dataset(dataset)
    _find(problems, f"films/{film_id}.json: the film is ok, films.parquet has failed for it")
    _find(problems, f"films/{film_id}.json: shard", f"holds {dropped}, which is not among")
    _find(problems, f"index.parquet: key {dropped} is in no film record")
    # and each shot the record still says the sample holds
    holding = [shot for shot in record["shots"] if dropped in shot["sample_keys"]]
    assert holding
    for shot in holding:
        _find(problems, f"films/{film_id}.json: shot {shot['index']}: sample_keys")
    assert len(problems) == 3 + len(holding), problems


def test_hostile_member_names_are_each_reported_and_the_rest_still_checked(
    dataset: Path,
) -> None:
    shard = _multi_sample_shard(dataset)
    first = next(iter_samples(shard)).key
    with tarfile.open(shard, "a", format=tarfile.GNU_FORMAT) as tar:  # appended after the last
        for name in (f"{first}\x1b[31m.json", "x" * 300 + ".json"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    problems = validate_dataset(dataset)
    rel = f"shards/{shard.name}"
    _find(problems, f"{rel}: member '{first}\\x1b[31m.json': control or format character U+001B")
    _find(problems, f"{rel}: member 'xxxx", "(305 characters)': name of 305 bytes")
    # the shard's good samples were still checked and indexed: no index problem follows
    assert not [p for p in problems if p.startswith("index.parquet")]
