"""``muss-builder select`` and ``merge`` on real tiny builds: the subset holds exactly the
matching samples byte for byte (once each, however many index rows match), reads as a packed
folder, and every refusal writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from muss_builder import SCHEMA_VERSION
from muss_builder.cli.main import app
from muss_builder.config import PipelineConfig
from muss_builder.core.storage import Storage
from muss_builder.curation.duplicates import ShotFingerprints
from muss_builder.pack.packer import PackOptions
from muss_builder.pack.shardlist import expand_shard_list
from muss_builder.pack.source import read_build
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.runtime.duplicate_registry import FOLDER, DuplicateRegistry
from muss_builder.shards.reader import iter_samples
from muss_builder.subsets import select as select_module
from muss_builder.subsets.select import select_build
from muss_builder.testing.synthetic_films import make_film

runner = CliRunner()
_ALL_TRAIN = PackOptions(splits={"train": 1.0})


def _samples(shards: list[str | Path]) -> dict[str, dict[str, bytes]]:
    found: dict[str, dict[str, bytes]] = {}
    for shard in shards:
        for sample in iter_samples(shard):
            assert sample.key not in found, f"{sample.key} twice"
            found[sample.key] = sample.members
    return found


def _source(summary: BuildSummary) -> dict[str, dict[str, bytes]]:
    return _samples(sorted((Path(summary.out) / "shards").glob("*.tar")))


@pytest.fixture(scope="module")
def other_build(tmp_path_factory, tiny_config: PipelineConfig) -> BuildSummary:
    """A build of one more film (not in ``built_dataset``), for merging."""
    root = tmp_path_factory.mktemp("other")
    film = make_film(root / "other.mp4", (30, 40, 25, 50, 36, 24, 44), fps=24)
    return build([str(film.path)], root / "out", tiny_config, executor="inline")


def test_select_keeps_exactly_the_matching_samples(built_dataset: BuildSummary, tmp_path):
    index = pq.read_table(Path(built_dataset.out) / "index.parquet")
    film = index["film_id"][0].as_py()
    clause = f"n_shots >= 2 AND film_id = '{film}' AND track = 'montage'"
    dest = tmp_path / "subset"
    args = ["select", str(built_dataset.out), "--where", clause, "--out", str(dest)]
    done = runner.invoke(app, [*args, "--splits", "train=1", "--json"])
    assert done.exit_code == 0, done.output
    manifest = json.loads(done.stdout)
    wanted = {r["key"] for r in index.to_pylist() if r["film_id"] == film}
    shards = expand_shard_list(str(dest))
    subset = _samples(shards)
    assert set(subset) == wanted
    source = _source(built_dataset)
    assert all(subset[k] == source[k] for k in wanted)  # byte for byte
    rows = pq.read_table(dest / "index.parquet").to_pylist()
    assert sorted(r["key"] for r in rows) == sorted(wanted)
    assert {r["split"] for r in rows} == {"train"} and all(r["source_shard"] for r in rows)
    assert manifest["selection"]["where"] == clause
    assert pq.read_table(dest / "films.parquet")["film_id"].to_pylist() == [film]
    assert sorted(p.name for p in (dest / "films").iterdir()) == [f"{film}.json"]
    assert runner.invoke(app, ["validate", str(dest)]).exit_code == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_issue_example_parses_and_an_empty_selection_writes_nothing(
    built_dataset: BuildSummary, tmp_path
):
    dest = tmp_path / "subset"
    clause = "n_shots >= 4 AND worst_aesthetic > 5 AND track = 'subject'"
    done = runner.invoke(app, ["select", str(built_dataset.out), "-w", clause, "-o", str(dest)])
    assert done.exit_code == 1, done.output
    assert "no sample" in done.stderr and "nothing written" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_clauses_and_destinations_exit_2(built_dataset: BuildSummary, tmp_path):
    out = str(built_dataset.out)
    done = runner.invoke(app, ["select", out, "-w", "n_shot > 1", "-o", str(tmp_path / "s")])
    assert done.exit_code == 2 and "no column 'n_shot'" in done.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    done = runner.invoke(app, ["select", out, "-w", "n_shots > 1", "-o", str(tmp_path / "full")])
    assert done.exit_code == 2 and "not empty" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_select_on_an_incomplete_build_refuses_naming_the_shard(
    built_dataset: BuildSummary, tmp_path
):
    copy = tmp_path / "build"
    shutil.copytree(built_dataset.out, copy)
    gone = sorted((copy / "shards").glob("*.tar"))[0]
    gone.unlink()
    dest = tmp_path / "subset"
    done = runner.invoke(app, ["select", str(copy), "-w", "n_shots > 0", "-o", str(dest)])
    assert done.exit_code == 1
    assert f"shards/{gone.name}" in done.stderr and "missing" in done.stderr
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_sample_indexed_under_two_tracks_is_copied_once(
    built_dataset: BuildSummary, tmp_path, monkeypatch
):
    """The index may hold one row per (sample, track): both rows are kept, the sample once."""
    real = read_build(str(built_dataset.out))
    index = real.index
    at = index.schema.get_field_index("track")
    subject = pa.array(["subject"] * index.num_rows, pa.string())
    doubled = pa.concat_tables([index, index.set_column(at, index.schema.field(at), subject)])
    real.index = doubled
    monkeypatch.setattr(select_module, "read_build", lambda root: real)
    result = select_build(str(built_dataset.out), "n_shots > 0", str(tmp_path / "s"))
    assert result.n_rows == 2 * index.num_rows and result.n_samples == index.num_rows
    shards = expand_shard_list(str(tmp_path / "s"))
    assert set(_samples(shards)) == set(index["key"].to_pylist())
    rows = pq.read_table(tmp_path / "s" / "index.parquet").to_pylist()
    assert sorted((r["key"], r["track"]) for r in rows) == sorted(
        (k, t) for k in index["key"].to_pylist() for t in ("montage", "subject")
    )


def test_merge_links_shards_and_joins_the_tables(
    built_dataset: BuildSummary, other_build: BuildSummary, tmp_path
):
    dest = tmp_path / "merged"
    args = ["merge", str(built_dataset.out), str(other_build.out), "--out", str(dest), "--json"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    n = built_dataset.n_index_rows + other_build.n_index_rows
    assert summary["n_samples"] == n and summary["n_films"] == 3
    # 3 shards, 3 records, and each film's curation files (fingerprints, drop examples)
    curation = {
        str(p.relative_to(b.out))
        for b in (built_dataset, other_build)
        for p in (Path(b.out) / "curation").rglob("*")
        if p.is_file()
    }
    assert summary["files_linked"] + summary["files_copied"] == 3 + 3 + len(curation)
    assert {str(p.relative_to(dest)) for p in (dest / "curation").rglob("*") if p.is_file()} == (
        curation
    )
    # a build run into the merged folder checks for duplicates against every merged film
    registry = DuplicateRegistry(str(dest))
    assert sorted(registry.films()) == sorted(
        r.film_id for b in (built_dataset, other_build) for r in b.results
    )
    card = (dest / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card
    assert (dest / "pipeline.yaml").read_bytes() == (
        built_dataset.out / "pipeline.yaml"
    ).read_bytes()
    merged = _samples(sorted((dest / "shards").glob("*.tar")))
    assert merged == _source(built_dataset) | _source(other_build)
    assert pq.read_table(dest / "index.parquet").num_rows == n
    assert pq.read_table(dest / "films.parquet").num_rows == 3
    assert runner.invoke(app, ["validate", str(dest)]).exit_code == 0
    assert read_build(str(dest)).n_samples == n  # pack and select take it


def test_merge_reports_footage_repeated_between_the_builds(
    built_dataset: BuildSummary, other_build: BuildSummary, tmp_path
):
    """The synthetic films share their sources (segment i of every film starts at the same
    lavfi pattern), so the other build's film repeats footage of ``built_dataset``'s films,
    which neither build could see. What ``merge`` reports for it is what the duplicate
    registry of ``built_dataset`` says when the other film claims after its films."""
    dest = tmp_path / "merged"
    args = ["merge", str(built_dataset.out), str(other_build.out), "--out", str(dest)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    stats = json.loads((dest / "stats.json").read_text())["cross_build_duplicates"]
    # the registry of built_dataset (a copy of its fingerprint files), claimed into
    registry_dir = tmp_path / "registry"
    shutil.copytree(built_dataset.out / FOLDER, registry_dir / FOLDER)
    (other_id,) = [r.film_id for r in other_build.results]
    with np.load(other_build.out / FOLDER / f"{other_id}.npz") as doc:
        shots, vectors = doc["shots"], doc["vectors"].astype(np.float32)
    fp = ShotFingerprints([int(s) for s in shots], vectors, np.ones(len(shots), bool))
    claimed = DuplicateRegistry(str(registry_dir)).claim(other_id, fp, [1.0] * len(shots))
    want: dict[str, int] = {}
    for film_id, _, _ in claimed.shot_matches.values():
        if film_id != other_id:
            want[film_id] = want.get(film_id, 0) + 1
    assert want, "the shared sources should repeat some footage"
    assert stats["films"] == {other_id: want}
    assert stats["shots"] == sum(want.values()) and stats["not_compared"] == []
    assert f"warning: {sum(want.values())} shot(s) of 1 film(s) repeat footage" in done.output


def test_merge_refuses_collisions_and_other_schema_versions(
    built_dataset: BuildSummary, other_build: BuildSummary, tmp_path
):
    dest = tmp_path / "merged"
    done = runner.invoke(
        app, ["merge", str(built_dataset.out), str(built_dataset.out), "-o", str(dest)]
    )
    assert done.exit_code == 1 and "would collide" in done.stderr
    copy = tmp_path / "other"
    shutil.copytree(other_build.out, copy)
    table = pq.read_table(copy / "index.parquet")
    pq.write_table(table.replace_schema_metadata({"schema_version": "0.9"}), copy / "index.parquet")
    done = runner.invoke(app, ["merge", str(built_dataset.out), str(copy), "-o", str(dest)])
    assert done.exit_code == 1, done.output
    assert f"index.parquet: schema version {SCHEMA_VERSION}" in done.stderr and "0.9" in done.stderr
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_select_from_a_subset_is_refused_with_the_reason(built_dataset: BuildSummary, tmp_path):
    first = tmp_path / "first"
    select_build(str(built_dataset.out), "n_shots > 0", str(first))
    done = runner.invoke(
        app, ["select", str(first), "-w", "n_shots > 0", "-o", str(tmp_path / "b")]
    )
    assert done.exit_code == 2 and "select takes a build" in done.stderr
    assert not (tmp_path / "b").exists()


def test_select_from_and_to_s3(built_dataset: BuildSummary, s3_prefix: str, tmp_path):
    source = Storage.open(f"{s3_prefix}/build")
    root = Path(built_dataset.out)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            source.put_file(path, rel)
    dest = f"{s3_prefix}/subset"
    result = select_build(source.root, "n_shots > 0", dest)
    local = select_build(str(root), "n_shots > 0", str(tmp_path / "local"))
    assert result.manifest["shards"] == local.manifest["shards"]  # the same bytes
    urls = expand_shard_list(dest)
    assert [u.rsplit("/", 1)[-1] for u in urls] == [s["name"] for s in local.manifest["shards"]]
    assert runner.invoke(app, ["validate", dest]).exit_code == 0


def test_a_subset_has_a_card_that_loads_it(built_dataset: BuildSummary, tmp_path):
    dest = tmp_path / "subset"
    result = select_build(str(built_dataset.out), "n_shots >= 2", str(dest), _ALL_TRAIN)
    text = (dest / "README.md").read_text()
    header = yaml.safe_load(text[4:].split("\n---\n", 1)[0])
    # no sample of the synthetic films serves the subject track: no subject config
    assert header["configs"] == [
        {
            "config_name": "default",
            "default": True,
            "data_files": [{"split": "train", "path": "train-*.tar"}],
        },
        {
            "config_name": "montage",
            "data_files": [{"split": "train", "path": "train-montage-*.tar"}],
        },
    ]
    assert "A subset: the samples whose index rows match `n_shots >= 2`" in text
    assert (dest / "pipeline.yaml").read_bytes() == (
        Path(built_dataset.out) / "pipeline.yaml"
    ).read_bytes()
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == result.n_samples


def test_pack_rewrites_the_card_to_name_the_packed_shards(built_dataset: BuildSummary, tmp_path):
    copy = tmp_path / "build"
    shutil.copytree(built_dataset.out, copy)
    done = runner.invoke(app, ["pack", str(copy), "--splits", "train=1", "--target-bytes", "1MB"])
    assert done.exit_code == 0, done.output
    header = yaml.safe_load((copy / "README.md").read_text()[4:].split("\n---\n", 1)[0])
    default = header["configs"][0]
    assert default["data_files"] == [{"split": "train", "path": "packed/train-*.tar"}]
