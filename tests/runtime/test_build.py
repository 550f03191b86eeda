"""End-to-end builds: contract files, determinism, resume, and the Ray executor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.runtime.build import build
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.shards.schemas import schema_errors, table_schema


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))}


def index_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "index.parquet").to_pylist()


DUPLICATE_COLUMNS = ("worst_duplicate_similarity", "mean_duplicate_similarity")


def assert_same_build(out: Path, other: Path) -> None:
    """Two builds of the same films agree: film records (but their timings), their
    films.parquet rows (but the seconds) and index.parquet, every curation measure included.

    Except for a footage in two films: which copy is the original depends on which film
    claimed first (docs/curation.md), so the two shots' flags, ``duplicate_of`` and
    ``duplicate_similarity`` may swap, and with them the duplicate columns of their samples.
    Only those are left out; every shot whose flags came out the same is compared whole."""
    records = {p.stem: json.loads(p.read_text()) for p in (out / "films").glob("*.json")}
    others = {p.stem: json.loads(p.read_text()) for p in (other / "films").glob("*.json")}
    assert records.keys() == others.keys()
    swapped: set[str] = set()  # samples holding a shot whose duplicate verdict changed

    def verdict(shot: dict) -> tuple:
        return shot["flags"], shot["duplicate_of"]

    for film_id, record in records.items():
        for a, b in zip(record["shots"], others[film_id]["shots"], strict=True):
            if verdict(a) != verdict(b):
                assert "duplicate" in a["flags"] + b["flags"]  # nothing else may change
                swapped.add(a["sample_key"])
                for shot in (a, b):
                    del shot["flags"], shot["duplicate_of"]
                    del shot["quality"]["duplicate_similarity"]

    def same(doc: dict) -> dict:
        if doc.get("key") in swapped:
            return {k: v for k, v in doc.items() if k not in DUPLICATE_COLUMNS}
        return doc

    for film_id, record in records.items():
        twin = others[film_id]
        for doc in (record, twin):
            del doc["timings"]
            doc["samples"] = [same(sample) for sample in doc["samples"]]
        assert record == twin
    rows, other_rows = index_rows(out), index_rows(other)
    assert [same(r) for r in rows] == [same(r) for r in other_rows]
    # the exception must leave something to compare: a sample's duplicate columns at least
    assert len(swapped & {r["key"] for r in rows}) < len(rows)

    def films(folder: Path) -> dict[str, dict]:
        table = pq.read_table(folder / "films.parquet").to_pylist()
        return {
            r["film_id"]: {k: v for k, v in r.items() if not k.startswith("seconds_")}
            for r in table
            if r["film_id"] in records
        }

    assert films(out) == films(other)


def test_build_writes_the_output_contract(built_dataset, twelve_film) -> None:
    out = built_dataset.out
    assert {r.status for r in built_dataset.results} == {"ok"}
    for name in ("index.parquet", "films.parquet", "stats.json"):
        assert (out / name).is_file()
    assert pq.read_schema(out / "index.parquet").equals(table_schema("index"), check_metadata=False)
    rows = index_rows(out)
    assert len(rows) == built_dataset.n_index_rows > 0
    for shard in (out / "shards").glob("*.tar"):
        for sample in iter_samples(shard):
            doc = load_sample_json(sample)
            assert schema_errors("sample", doc) == []
            assert sorted(sample.members) == ["json", "mp4", "refs.jpg"]  # in every sample
            assert doc["key"] == sample.key and sample.key.startswith(shard.name[:16])
    for record in (out / "films").glob("*.json"):
        assert schema_errors("film", json.loads(record.read_text())) == []
    stats = json.loads((out / "stats.json").read_text())
    # no face in these films: one montage row per sample
    assert stats["films"]["ok"] == 2 and stats["samples_in_index"] == len(rows)
    assert stats["index_rows"] == len(rows) and {r["track"] for r in rows} == {"montage"}


def test_samples_follow_the_shot_list(built_dataset, twelve_film) -> None:
    record_path = next(
        p
        for p in (built_dataset.out / "films").glob("*.json")
        if json.loads(p.read_text())["probe"]["file_name"] == "twelve.mp4"
    )
    record = json.loads(record_path.read_text())
    assert [s["start_frame"] for s in record["shots"][1:]] == twelve_film.cut_frames
    in_samples = [s for s in record["shots"] if s["sample_key"]]
    # every shot of the twelve-segment film is long enough to be in a sample, max 4 per sample
    assert len(in_samples) == 12 and len(record["samples"]) == 3
    assert all(s["n_shots"] == 4 for s in record["samples"])


def test_same_input_gives_byte_identical_shards(
    tmp_path, built_dataset, twelve_film, film30, tiny_config
) -> None:
    again = build(
        [str(film30.path), str(twelve_film.path)],
        tmp_path / "again",
        tiny_config,
        executor="inline",
    )
    assert shard_bytes(again.out) == shard_bytes(built_dataset.out)
    # the inputs come in the other order: a shot's similarity to another film is recorded
    # only when it is a duplicate match, so nothing but the swapped copies may differ
    assert_same_build(again.out, built_dataset.out)


def test_rerun_skips_complete_films_and_redoes_partial_ones(
    tmp_path, built_dataset, twelve_film, film30, tiny_config
) -> None:
    out = tmp_path / "resume"
    shutil.copytree(built_dataset.out, out)
    expected = shard_bytes(out)
    # make one film "partial": its record is gone and a half-written shard lies around
    victim = sorted((out / "films").glob("*.json"))[0]
    film_id = victim.stem
    victim.unlink()
    (out / "shards" / f".{film_id}-00001.tar.partial-999").write_bytes(b"half")
    summary = build([str(twelve_film.path), str(film30.path)], out, tiny_config, executor="inline")
    resumed = {r.film_id: r.resumed for r in summary.results}
    assert resumed[film_id] is False and sum(resumed.values()) == 1
    assert shard_bytes(out) == expected
    assert not list((out / "shards").glob(".*"))
    assert index_rows(out) == index_rows(built_dataset.out)


def test_rerun_with_another_config_rebuilds(
    tmp_path, built_dataset, twelve_film, tiny_config
) -> None:
    out = tmp_path / "reconfigured"
    shutil.copytree(built_dataset.out, out)
    other = tiny_config.model_copy(
        update={"samples": tiny_config.samples.model_copy(update={"max_shots": 2})}
    )
    summary = build([str(twelve_film.path)], out, other, executor="inline")
    (result,) = summary.results
    assert result.status == "ok" and not result.resumed
    record = json.loads((out / "films" / f"{result.film_id}.json").read_text())
    assert record["pipeline"]["config_hash"] == other.fingerprint()
    assert {s["n_shots"] for s in record["samples"]} == {2}


@pytest.mark.ray
def test_ray_executor_matches_inline(
    tmp_path, built_dataset, twelve_film, film30, tiny_config
) -> None:
    summary = build(
        [str(twelve_film.path), str(film30.path), str(tmp_path / "missing.mp4")],
        tmp_path / "ray",
        tiny_config,
        executor="ray",
        num_cpus=2,
    )
    statuses = sorted(r.status for r in summary.results)
    assert statuses == ["failed", "ok", "ok"]
    assert shard_bytes(summary.out) == shard_bytes(built_dataset.out)
    assert_same_build(summary.out, built_dataset.out)  # whichever film claimed first
    assert summary.stats["executor"] == "ray"
