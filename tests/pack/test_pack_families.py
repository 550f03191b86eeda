"""Shard families on a build with all three (``three_families``: montage only, both tracks,
subject only): a pack interrupted anywhere resumes to the bytes of one run while shards of
several families are being written, the same seed gives the same bytes, shards by size stay
near the target per family, and ``select`` keeps each sample in the family of its tracks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.pack.families import FAMILIES
from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.pack.source import read_build
from muss_builder.pack.tarout import PackedShard
from muss_builder.pack.validate import check_packed
from muss_builder.subsets.select import select_build
from tests.pack.test_readers import sample_tracks

ALL_TRAIN = {"train": 1.0}


def _files(dest: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(dest.iterdir()) if p.is_file()}


def test_resume_anywhere_gives_the_bytes_of_one_run(three_families: Path, tmp_path: Path):
    options = PackOptions(None, target_samples=2, splits=ALL_TRAIN, seed=3)
    whole = pack_build(str(three_families), str(tmp_path / "whole"), options)
    shards = whole.manifest["shards"]
    assert {s["family"] for s in shards} == set(FAMILIES)
    again = pack_build(str(three_families), str(tmp_path / "again"), options)
    assert _files(tmp_path / "again") == _files(tmp_path / "whole")
    assert again.manifest["families"] == {f: list(t) for f, t in FAMILIES.items()}
    for after in range(1, len(shards)):
        dest = tmp_path / f"cut{after}"
        published: list[str] = []

        def crash(shard: PackedShard, after: int = after, published: list = published) -> None:
            published.append(shard.name)
            if len(published) == after:
                raise KeyboardInterrupt(f"killed after {shard.name}")

        with pytest.raises(KeyboardInterrupt):
            pack_build(str(three_families), str(dest), options, on_shard=crash)
        assert sorted(p.name for p in dest.glob("*.tar")) == sorted(published)
        result = pack_build(str(three_families), str(dest), options)
        assert result.resumed_shards == after and result.written_shards == len(shards) - after
        assert _files(dest) == _files(tmp_path / "whole"), after
    assert check_packed(str(tmp_path / "whole")).problems == []


def test_shards_by_size_per_family(three_families: Path, tmp_path: Path):
    target = 40_000
    result = pack_build(str(three_families), str(tmp_path), PackOptions(target, splits=ALL_TRAIN))
    build = read_build(str(three_families))
    stored = {}
    for family, at in zip(FAMILIES, range(len(FAMILIES)), strict=True):
        mine = [s for s in result.manifest["shards"] if s["family"] == family]
        n_samples = sum(f.family_samples(family) for f in build.films)
        estimate = sum(f.family_bytes[at] for f in build.films)
        assert len(mine) == min(math.ceil(estimate / target), n_samples) >= 1, family
        assert sum(s["n_samples"] for s in mine) == n_samples
        in_family = sample_tracks([tmp_path / s["name"] for s in mine])
        assert all(t == list(FAMILIES[family]) for t in in_family.values())
        stored |= in_family
    assert len(stored) == build.n_samples
    done = CliRunner().invoke(app, ["validate", str(tmp_path), "--json"])
    assert done.exit_code == 0, done.output
    # a sample in the shard of another family is found
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = next(s for s in manifest["shards"] if s["family"] == "both")
    entry["family"] = "subject"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    problems = check_packed(str(tmp_path)).problems
    assert problems and all("not the subject family's tracks" in p for p in problems), problems


def test_a_subset_keeps_the_families_of_its_samples(three_families: Path, tmp_path: Path):
    """``select`` writes its samples in the families of the tracks they serve, whichever of
    their index rows matched: a sample serving both tracks selected by its subject row is in
    a ``both`` shard, which the subset card's montage config names too."""
    dest = tmp_path / "subset"
    options = PackOptions(splits=ALL_TRAIN)
    result = select_build(str(three_families), "track = 'subject'", str(dest), options)
    stored = sample_tracks(sorted(dest.glob("*.tar")))
    assert len(stored) == result.n_samples and all("subject" in t for t in stored.values())
    assert {s["family"] for s in result.manifest["shards"]} == {"both", "subject"}
    assert result.manifest["splits"]["train"]["families"]["montage"]["n_shards"] == 0
    assert check_packed(str(dest)).problems == []
    datasets = pytest.importorskip("datasets")
    for track in ("montage", "subject"):
        ds = datasets.load_dataset(str(dest), track, split="train", cache_dir=str(tmp_path / track))
        assert sorted(ds["__key__"]) == sorted(k for k, t in stored.items() if track in t)


def test_a_one_track_training_run_opens_only_the_shards_serving_it(
    three_families: Path, tmp_path: Path
):
    from muss_builder.train.data import DataConfig, ShardClipDataset
    from muss_builder.train.feed import expand_shards

    result = pack_build(str(three_families), str(tmp_path), PackOptions(None, 2, splits=ALL_TRAIN))
    by_family: dict[str, set[Path]] = {}
    for s in result.manifest["shards"]:
        by_family.setdefault(s["family"], set()).add((tmp_path / s["name"]).resolve())
    assert set(by_family) == set(FAMILIES)
    for tracks, families in (
        (["subject"], ("both", "subject")),
        (["montage"], ("montage", "both")),
        (["montage", "subject"], tuple(FAMILIES)),
    ):
        want = set().union(*(by_family[f] for f in families))
        assert set(expand_shards([str(tmp_path)], tracks)) == want, tracks
        # the library's dataset, given the packed folder, opens the same shards
        stream = ShardClipDataset(str(tmp_path), DataConfig(tracks=tracks))
        assert {Path(p).resolve() for p in stream.shards} == want, tracks
        # the samples of the shards it skipped would all have been skipped by their json
        skipped = set().union(*by_family.values()) - want
        assert all(not set(tracks) & set(t) for t in sample_tracks(sorted(skipped)).values())
    # a build's per-film shards carry no family: all of them, the reader picks by the json
    shards = sorted((three_families / "shards").glob("*.tar"))
    assert expand_shards([str(three_families)], ["subject"]) == [p.resolve() for p in shards]
