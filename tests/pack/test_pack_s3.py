"""Packing from and to ``s3://`` (a local moto server, real s3fs): the same bytes as a local
pack, and the shard-list forms users give (manifest, brace pattern, glob) on the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from muss_builder.core.storage import Storage
from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.pack.shardlist import expand_shard_list
from muss_builder.pack.source import BuildRefused
from muss_builder.pack.tarout import PackedShard
from muss_builder.runtime.build import BuildSummary

OPTIONS = PackOptions(60_000, splits={"train": 1.0}, seed=5)


def _upload(local: Path, url: str) -> None:
    store = Storage.open(url)
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            store.put_file(path, rel)


def test_s3_round_trip_gives_the_local_bytes(
    built_dataset: BuildSummary, s3_prefix: str, tmp_path: Path
):
    _upload(built_dataset.out, f"{s3_prefix}/build")
    local = pack_build(str(built_dataset.out), str(tmp_path / "local"), OPTIONS)
    remote = pack_build(f"{s3_prefix}/build", None, OPTIONS)
    assert remote.dest == f"{s3_prefix}/build/packed"
    assert remote.manifest == local.manifest
    store = Storage.open(remote.dest)
    for entry in local.manifest["shards"]:
        assert store.read_bytes(entry["name"]) == (tmp_path / "local" / entry["name"]).read_bytes()
    assert store.read_bytes("index.parquet") == (tmp_path / "local" / "index.parquet").read_bytes()
    assert store.list("progress", ".json") == []
    names = [s["name"] for s in local.manifest["shards"]]
    urls = [f"{remote.dest}/{n}" for n in names]
    assert expand_shard_list(f"{remote.dest}/manifest.json") == urls
    assert expand_shard_list(remote.dest, split="train") == urls
    brace = f"{remote.dest}/train-montage-{{00000..{len(names) - 1:05d}}}.tar"
    assert expand_shard_list(brace) == urls
    assert expand_shard_list(remote.dest, split="train", track="montage") == urls
    with pytest.raises(FileNotFoundError, match="no shards"):  # no sample serves it
        expand_shard_list(remote.dest, split="train", track="subject")
    assert expand_shard_list(f"{remote.dest}/train-*.tar") == urls
    with pytest.raises(
        FileNotFoundError, match=f"do not exist: {remote.dest}/train-montage-{len(names):05d}.tar"
    ):
        expand_shard_list(f"{remote.dest}/train-montage-{{00000..00099}}.tar")
    # a second run with the same options finds the finished pack
    assert pack_build(f"{s3_prefix}/build", None, OPTIONS).already_done


def test_s3_build_with_a_missing_shard_is_refused(built_dataset: BuildSummary, s3_prefix: str):
    _upload(built_dataset.out, f"{s3_prefix}/build")
    store = Storage.open(f"{s3_prefix}/build")
    gone = store.list("shards", ".tar")[0]
    store.remove(gone)
    with pytest.raises(BuildRefused, match=f"{gone} .*missing"):
        pack_build(f"{s3_prefix}/build", f"{s3_prefix}/out", OPTIONS)
    assert Storage.open(f"{s3_prefix}/out").list("", "") == []
    assert json.loads(store.read_bytes(store.list("films", ".json")[0]))["shards"]


def test_s3_resume_after_an_interruption(
    built_dataset: BuildSummary, s3_prefix: str, tmp_path: Path
):
    _upload(built_dataset.out, f"{s3_prefix}/build")
    whole = pack_build(str(built_dataset.out), str(tmp_path / "whole"), OPTIONS)
    dest = f"{s3_prefix}/cut"

    def crash(shard: PackedShard) -> None:
        raise KeyboardInterrupt(shard.name)

    with pytest.raises(KeyboardInterrupt):
        pack_build(f"{s3_prefix}/build", dest, OPTIONS, on_shard=crash)
    store = Storage.open(dest)
    assert store.list("", ".tar") == ["train-montage-00000.tar"]
    assert not store.exists("manifest.json")
    resumed = pack_build(f"{s3_prefix}/build", dest, OPTIONS)
    assert resumed.resumed_shards == 1 and resumed.manifest == whole.manifest
    for name in [s["name"] for s in whole.manifest["shards"]] + ["index.parquet"]:
        assert store.read_bytes(name) == (tmp_path / "whole" / name).read_bytes()
