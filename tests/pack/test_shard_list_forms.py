"""Every place that takes a list of shards takes what users have: a folder, a glob, a brace
pattern, a manifest, ``s3://`` urls; and a missing shard is reported by name. The places:
``validate``, ``inspect``, the trainer's shard list and stream, the benchmark's make-suite."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from muss_builder.bench.suite import make_suite
from muss_builder.cli.main import app
from muss_builder.core.storage import Storage
from muss_builder.pack.packer import PackOptions, PackResult, pack_build
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import ShardSample
from muss_builder.train.feed import DataError, expand_shards
from muss_builder.train.shard_list import resolve_shards
from muss_builder.train.stream import ShardStream

runner = CliRunner()


class KeyStream(ShardStream):
    def decode(self, sample: ShardSample) -> str:
        return sample.key


@pytest.fixture(scope="module")
def packed(built_dataset: BuildSummary, tmp_path_factory) -> PackResult:
    dest = tmp_path_factory.mktemp("forms") / "packed"
    return pack_build(str(built_dataset.out), str(dest), PackOptions(60_000, splits={"train": 1}))


def _forms(folder: str, names: list[str]) -> dict[str, str]:
    last = len(names) - 1
    return {
        "folder": folder,
        "glob": f"{folder}/train-*.tar",
        "brace": f"{folder}/train-montage-{{00000..{last:05d}}}.tar",
        "manifest": f"{folder}/manifest.json",
    }


def _keys(result: PackResult) -> set[str]:
    return set(pq.read_table(Path(result.dest) / "index.parquet")["key"].to_pylist())


def _names(result: PackResult) -> list[str]:
    return [s["name"] for s in result.manifest["shards"]]


def test_validate_and_inspect_take_every_form(packed: PackResult):
    names = _names(packed)
    n = packed.manifest["source"]["n_samples"]
    assert len(names) >= 2
    for form, spec in _forms(packed.dest, names).items():
        done = runner.invoke(app, ["validate", spec, "--json"])
        assert done.exit_code == 0, (form, done.output)
        report = json.loads(done.stdout)
        assert report["ok"] and report["n_shards"] == len(names) and report["n_samples"] == n
        done = runner.invoke(app, ["inspect", spec, "--json"])
        assert done.exit_code == 0, (form, done.output)
        assert json.loads(done.stdout)["totals"] == {
            **json.loads(done.stdout)["totals"],
            "shards": len(names),
            "samples": n,
        }
    one = f"{packed.dest}/{names[0]}"
    done = runner.invoke(app, ["inspect", one, "--json"])
    assert done.exit_code == 0 and json.loads(done.stdout)["shard"] == one


def test_a_missing_shard_is_named(packed: PackResult):
    names = _names(packed)
    missing = f"{packed.dest}/train-montage-{len(names):05d}.tar"
    brace = f"{packed.dest}/train-montage-{{00000..{len(names):05d}}}.tar"
    for command in ("validate", "inspect"):
        done = runner.invoke(app, [command, brace])
        assert done.exit_code == 2 and missing in done.stderr, done.output
    with pytest.raises(FileNotFoundError, match=missing):
        resolve_shards(brace)
    with pytest.raises(DataError, match=missing):
        expand_shards([brace])


def test_the_trainer_reads_every_form(packed: PackResult):
    names = _names(packed)
    paths = [Path(packed.dest) / n for n in names]
    every = _keys(packed)
    for form, spec in _forms(packed.dest, names).items():
        assert resolve_shards(spec) == paths, form
        assert expand_shards([spec]) == [p.resolve() for p in paths], form
        assert set(KeyStream(spec, shuffle_buffer=0)) == every, form


def test_s3_shard_lists(packed: PackResult, s3_prefix: str):
    store = Storage.open(f"{s3_prefix}/packed")
    for path in sorted(Path(packed.dest).iterdir()):
        store.put_file(path, path.name)
    names = _names(packed)
    urls = [store.url(n) for n in names]
    every = _keys(packed)
    for form, spec in _forms(store.root, names).items():
        assert resolve_shards(spec) == urls, form
    stream = KeyStream(store.url("manifest.json"), shuffle_buffer=0)
    assert set(stream) == every
    brace = _forms(store.root, names)["brace"]
    done = runner.invoke(app, ["validate", brace, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["n_samples"] == len(every)
    done = runner.invoke(app, ["validate", store.root])  # a packed prefix: manifest and index
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["inspect", urls[0], "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["shards"][0]["shard"] == urls[0]
    store.remove(names[-1])
    done = runner.invoke(app, ["validate", brace])
    assert done.exit_code == 2 and urls[-1] in done.stderr


def test_make_suite_takes_a_packed_folder_and_a_shard_list(packed: PackResult, tmp_path):
    names = _names(packed)
    spec = _forms(packed.dest, names)["brace"]
    suite = make_suite(
        packed.dest, tmp_path / "suite", n_scripts=2, tracks=("montage",), shards=[spec]
    )
    assert 1 <= len(suite.scripts) <= 2
    for script in suite.scripts:
        assert (tmp_path / "suite" / "real" / f"{script.key}.mp4").is_file()
    done = runner.invoke(
        app,
        ["bench", "make-suite", packed.dest, "--out", str(tmp_path / "s2"), "--track",
         "montage", "--shards", f"{packed.dest}/train-montage-{{00000..00099}}.tar"],
    )  # fmt: skip
    assert done.exit_code == 2 and f"train-montage-{len(names):05d}.tar" in done.output


def test_the_trainer_takes_the_train_split_of_a_packed_folder(
    built_dataset: BuildSummary, tmp_path
):
    index = pq.read_table(Path(built_dataset.out) / "index.parquet")
    test_film = index["film_id"][0].as_py()
    options = PackOptions(60_000, splits={"train": 0.5, "test": 0.5}, test_films=(test_film,))
    result = pack_build(str(built_dataset.out), str(tmp_path / "p"), options)
    train = [
        Path(result.dest, s["name"]) for s in result.manifest["shards"] if s["split"] == "train"
    ]
    assert train and len(train) < len(result.manifest["shards"])
    for spec in (result.dest, f"{result.dest}/manifest.json"):
        assert expand_shards([spec]) == [p.resolve() for p in train]
    assert len(expand_shards([f"{result.dest}/*.tar"])) == len(result.manifest["shards"])
