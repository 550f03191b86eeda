"""``pack_build`` on a real tiny build (``built_dataset``: two synthetic films, tiny pipeline):
every sample once with its bytes, splits by film, shard sizes, determinism, resume, refusal
of an incomplete build, and webdataset's WebLoader reading the packed shards."""

from __future__ import annotations

import json
import math
import shutil
import signal
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.pack.films import FilmStream, PackError
from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.pack.plan import Boundaries
from muss_builder.pack.source import BuildRefused, read_build
from muss_builder.pack.tarout import PackedShard
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.writer import FIXED_MTIME, tar_member_bytes
from muss_builder.testing.interrupts import swallowed_ctrl_c
from muss_builder.testing.synthetic_films import SyntheticFilm

ALL_TRAIN = {"train": 1.0}


def _samples(shards: list[Path]) -> dict[str, dict[str, bytes]]:
    """key -> {ext: bytes} over ``shards``; a key seen twice fails the test."""
    found: dict[str, dict[str, bytes]] = {}
    for shard in shards:
        for sample in iter_samples(shard):
            assert sample.key not in found, f"{sample.key} twice"
            found[sample.key] = sample.members
    return found


def _packed(dest: Path) -> list[Path]:
    return sorted(dest.glob("*.tar"))


def _film_id(summary: BuildSummary, film: SyntheticFilm) -> str:
    return next(r.film_id for r in summary.results if r.path == str(film.path))


def _files(dest: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(dest.iterdir()) if p.is_file()}


def test_every_sample_once_with_identical_bytes(built_dataset: BuildSummary, tmp_path: Path):
    dest = tmp_path / "packed"
    result = pack_build(str(built_dataset.out), str(dest), PackOptions(60_000, splits=ALL_TRAIN))
    source = _samples(sorted((built_dataset.out / "shards").glob("*.tar")))
    packed = _samples(_packed(dest))
    assert len(source) >= 5 and packed == source
    assert result.written_shards == len(_packed(dest)) >= 3
    # film-mixed order and the member order of each sample are the source's
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["source"]["n_samples"] == len(source)
    for entry in manifest["shards"]:
        path = dest / entry["name"]
        assert path.stat().st_size == entry["size_bytes"]
        with tarfile.open(path) as tar:
            infos = tar.getmembers()
        assert {(i.mtime, i.uid, i.gid, i.uname, i.mode) for i in infos} == {
            (FIXED_MTIME, 0, 0, "", 0o444)
        }
    index = pq.read_table(dest / "index.parquet").to_pylist()
    assert sorted(r["key"] for r in index) == sorted(source)
    for row in index:
        assert row["split"] == "train"
        assert row["key"] in _samples([dest / row["shard"]])
        assert row["source_shard"].startswith(row["film_id"])
    assert not (dest / "progress").exists()


def test_splits_by_film_and_named_test_films(
    built_dataset: BuildSummary, film30: SyntheticFilm, twelve_film: SyntheticFilm, tmp_path
):
    held_out = _film_id(built_dataset, film30)
    options = PackOptions(60_000, splits={"train": 0.9, "validation": 0.1, "test": 0.0})
    # by the input file's name: "test" has a share of 0, yet named films go there
    by_name = PackOptions(**{**options.__dict__, "test_films": (film30.path.name,)})
    result = pack_build(str(built_dataset.out), str(tmp_path / "p"), by_name)
    films = result.manifest["films"]
    assert films[held_out] == "test"
    assert films[_film_id(built_dataset, twelve_film)] in ("train", "validation")
    for row in pq.read_table(tmp_path / "p" / "index.parquet").to_pylist():
        assert row["split"] == films[row["film_id"]]
        assert row["shard"].startswith(f"{row['split']}-")
    test = result.manifest["splits"]["test"]
    # the synthetic films have no faces: every sample serves the montage track only
    assert (
        test["n_films"] == 1
        and test["pattern"] == f"test-montage-{{00000..{test['n_shards'] - 1:05d}}}.tar"
        and test["tracks"]["montage"]["pattern"] == test["pattern"]
        and test["tracks"]["subject"]
        == {"n_shards": 0, "n_samples": 0, "size_bytes": 0, "pattern": None}
    )
    with pytest.raises(ValueError, match="not a film of this build"):
        pack_build(
            str(built_dataset.out),
            str(tmp_path / "q"),
            PackOptions(**{**options.__dict__, "test_films": ("nosuchfilm.mp4",)}),
        )
    assert not (tmp_path / "q").exists()
    for inside in ("", "/shards", "/films/x", "/./"):
        with pytest.raises(ValueError, match="the build's own folder"):
            pack_build(str(built_dataset.out), f"{built_dataset.out}{inside}", options)


def test_shard_sizes_near_the_target(built_dataset: BuildSummary, tmp_path: Path):
    target = 50_000
    result = pack_build(
        str(built_dataset.out), str(tmp_path), PackOptions(target, splits=ALL_TRAIN)
    )
    sizes = [s["size_bytes"] for s in result.manifest["shards"]]
    source = _samples(sorted((built_dataset.out / "shards").glob("*.tar")))
    biggest_sample = max(sum(len(v) for v in m.values()) for m in source.values())
    in_tar = sum(tar_member_bytes(len(v)) for m in source.values() for v in m.values())
    total = sum(sizes)
    build = read_build(str(built_dataset.out))
    plan = Boundaries.plan(build.films, target, None)
    # ceil(total / target) shards, but never more than samples (the tiny build's samples are
    # about the target's size)
    assert len(sizes) == plan.n_shards == min(math.ceil(plan.total / target), len(source)) >= 3
    # the plan's estimate from the records' shard sizes: off by their tar padding only
    assert abs(plan.total - in_tar) <= 10240 * sum(len(f.shards) for f in build.films)
    mean = total / len(sizes)
    # each within half a sample (plus headers and tar padding) of the mean, never a tiny tail
    assert all(abs(s - mean) <= biggest_sample + 2 * 10240 for s in sizes), (sizes, biggest_sample)
    by_count = pack_build(
        str(built_dataset.out),
        str(tmp_path / "n"),
        PackOptions(None, target_samples=2, splits=ALL_TRAIN),
    )
    counts = [s["n_samples"] for s in by_count.manifest["shards"]]
    assert len(counts) == math.ceil(sum(counts) / 2) and max(counts) <= 2


def test_same_seed_same_bytes_other_seed_other_order(built_dataset: BuildSummary, tmp_path):
    options = PackOptions(60_000, splits=ALL_TRAIN, seed=7)
    pack_build(str(built_dataset.out), str(tmp_path / "a"), options)
    pack_build(str(built_dataset.out), str(tmp_path / "b"), options)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    orders = set()
    for seed in range(6):
        result = pack_build(
            str(built_dataset.out),
            str(tmp_path / f"s{seed}"),
            PackOptions(60_000, splits=ALL_TRAIN, seed=seed),
        )
        orders.add(tuple(pq.read_table(tmp_path / f"s{seed}" / "index.parquet")["key"].to_pylist()))
        assert result.manifest["seed"] == seed
    assert len(orders) > 1  # the seed decides the interleave


def test_resume_after_an_interruption_gives_the_same_bytes(
    built_dataset: BuildSummary, tmp_path: Path
):
    options = PackOptions(50_000, splits=ALL_TRAIN, seed=3)
    pack_build(str(built_dataset.out), str(tmp_path / "whole"), options)
    dest = tmp_path / "cut"

    def crash(shard: PackedShard) -> None:
        raise KeyboardInterrupt(f"killed after {shard.name}")

    with pytest.raises(KeyboardInterrupt):
        pack_build(str(built_dataset.out), str(dest), options, on_shard=crash)
    assert [p.name for p in _packed(dest)] == ["train-montage-00000.tar"]
    assert not (dest / "manifest.json").exists()
    assert not list(dest.glob(".*partial*"))  # the shard in progress was dropped
    (dest / ".train-montage-00001.tar.partial-99999").write_bytes(b"half a killed run's shard")
    result = pack_build(str(built_dataset.out), str(dest), options)
    assert result.resumed_shards == 1 and result.written_shards == len(_packed(dest)) - 1
    assert _files(dest) == _files(tmp_path / "whole")
    again = pack_build(str(built_dataset.out), str(dest), options)
    assert again.already_done and again.written_shards == 0
    with pytest.raises(ValueError, match="other options"):
        pack_build(str(built_dataset.out), str(dest), PackOptions(50_000, splits=ALL_TRAIN, seed=4))


@pytest.fixture
def broken_copy(built_dataset: BuildSummary, tmp_path: Path) -> Path:
    copy = tmp_path / "build"
    shutil.copytree(built_dataset.out, copy, ignore=shutil.ignore_patterns("packed"))
    return copy


def test_refuses_a_build_with_a_missing_shard(broken_copy: Path):
    shard = sorted((broken_copy / "shards").glob("*.tar"))[0]
    shard.unlink()
    with pytest.raises(BuildRefused) as refused:
        pack_build(str(broken_copy))
    film = shard.name.split("-")[0]
    assert any(
        f"shards/{shard.name} (film {film}): missing" in p for p in refused.value.problems
    ), refused.value.problems
    assert not (broken_copy / "packed").exists()


def test_refuses_a_build_with_a_missing_film_record(broken_copy: Path):
    record = sorted((broken_copy / "films").glob("*.json"))[0]
    record.unlink()
    with pytest.raises(BuildRefused) as refused:
        pack_build(str(broken_copy))
    text = str(refused.value)
    assert f"films/{record.name}: missing, though films.parquet says" in text
    assert f"shards/{record.stem}-00000.tar: listed by no film record" in text
    assert f"rows of film {record.stem}, which has no film record" in text
    assert not (broken_copy / "packed").exists()


def test_a_changed_shard_stops_the_pack_naming_it(broken_copy: Path):
    shard = sorted((broken_copy / "shards").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF  # same size, other content: only the sha256 can tell
    shard.write_bytes(bytes(data))
    with pytest.raises(PackError, match=f"shards/{shard.name} .*sha256"):
        pack_build(str(broken_copy), options=PackOptions(splits=ALL_TRAIN))
    assert not (broken_copy / "packed" / "manifest.json").exists()
    assert not list((broken_copy / "packed").glob("*.tar"))


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
def test_webloader_with_four_workers_reads_every_sample(built_dataset: BuildSummary, tmp_path):
    import webdataset as wds

    dest = tmp_path / "p"
    options = PackOptions(None, target_samples=1, splits=ALL_TRAIN)
    result = pack_build(str(built_dataset.out), str(dest), options)
    urls = [str(dest / s["name"]) for s in result.manifest["shards"]]
    assert len(urls) > 4  # more shards than workers
    dataset = wds.WebDataset(urls, shardshuffle=len(urls), seed=0)
    loader = wds.WebLoader(dataset, batch_size=None, num_workers=4)
    seen = sorted(sample["__key__"] for sample in loader)
    assert seen == sorted(pq.read_table(dest / "index.parquet")["key"].to_pylist())


def test_cli(built_dataset: BuildSummary, broken_copy: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["pack", str(built_dataset.out), "--to", str(out), "--target-bytes", "60kB"]
    result = runner.invoke(app, [*args, "--splits", "train=1", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "train-montage-{00000.." in result.stdout
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    again = runner.invoke(app, [*args, "--splits", "train=1", "--seed", "2", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["seed"] == 2
    bad = runner.invoke(app, [*args, "--splits", "train=0.5"])
    assert bad.exit_code == 2 and "add up to 0.5" in bad.output
    (broken_copy / "index.parquet").unlink()
    refused = runner.invoke(app, ["pack", str(broken_copy)])
    assert refused.exit_code == 1 and "index.parquet: missing" in refused.output


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_a_finaliser_swallows_stops_the_pack_and_a_rerun_resumes(
    built_dataset: BuildSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    options = PackOptions(50_000, splits=ALL_TRAIN, seed=3)
    pack_build(str(built_dataset.out), str(tmp_path / "whole"), options)
    read = FilmStream.next
    calls = []

    def next_then_ctrl_c(stream: FilmStream) -> tuple:
        calls.append(1)
        if len(calls) == 4:  # a few samples in: Python drops this Ctrl-C in __del__
            swallowed_ctrl_c()
        return read(stream)

    monkeypatch.setattr(FilmStream, "next", next_then_ctrl_c)
    dest = tmp_path / "cut"
    args = ["pack", str(built_dataset.out), "--to", str(dest), "--target-bytes", "50000"]
    args += ["--splits", "train=1", "--seed", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    assert "interrupted: finished shards are kept" in result.output
    assert len(calls) == 4  # stopped before the next sample
    assert not (dest / "manifest.json").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(FilmStream, "next", read)
    pack_build(str(built_dataset.out), str(dest), options)
    assert _files(dest) == _files(tmp_path / "whole")
