"""A built and packed dataset, read the way its users read it: Hugging Face ``datasets`` (by
the card, and as plain webdataset with the schema inferred), Ray Data, ``webdataset`` with
shard shuffling and four loader workers, and pyarrow on the tables. Real builds (the session's
tiny-config builds, merged without re-encoding), real packing, real readers; no mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.pack.shardlist import expand_shard_list
from muss_builder.report.card import write_card
from muss_builder.runtime.build import BuildSummary
from muss_builder.subsets.merge import merge_builds


@pytest.fixture(scope="module")
def packed(built_dataset: BuildSummary, face_dataset: BuildSummary, tmp_path_factory) -> Path:
    """Both session builds merged into one (montage and subject samples) and packed into
    one-sample shards, so a loader has more shards than workers."""
    out = tmp_path_factory.mktemp("readers") / "out"
    merge_builds([str(built_dataset.out), str(face_dataset.out)], str(out))
    pack_build(str(out), None, PackOptions(seed=0, target_samples=1, splits={"train": 1.0}))
    write_card(out)
    return out


def unique_keys(out: Path) -> set[str]:
    return {r["key"] for r in pq.read_table(out / "index.parquet").to_pylist()}


def test_datasets_load_by_the_card(packed: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(packed), split="train", cache_dir=str(tmp_path))
    # the clips' bytes, as the card's snippet does: decoding video needs torchcodec
    ds = ds.cast_column("mp4", datasets.Video(decode=False))
    assert sorted(ds["__key__"]) == sorted(unique_keys(packed))
    # clips as bytes: decoding video needs torchcodec, which a CPU test machine lacks
    ds = ds.cast_column("mp4", datasets.Video(decode=False))
    subject = ds.filter(lambda s: "subject" in s["json"]["tracks"])
    assert len(subject) >= 1
    row = subject[0]
    assert row["refs.jpg"].size[0] > 8  # a real strip of reference crops, not the placeholder
    assert row["json"]["references"][0]["strip_box"][2] <= row["refs.jpg"].size[0]


def test_datasets_webdataset_with_the_cards_features(packed: Path, tmp_path: Path) -> None:
    """The plain ``webdataset`` loader on the shard files, given the card's features (an
    inferred schema types the empty lists of the first five samples as ``list<null>``:
    docs/layout.md)."""
    datasets = pytest.importorskip("datasets")
    import yaml

    head = (packed / "README.md").read_text().split("\n---\n", 1)[0].removeprefix("---\n")
    features = datasets.Features._from_yaml_list(yaml.safe_load(head)["dataset_info"]["features"])
    files = [str(p) for p in sorted((packed / "packed").glob("train-*.tar"))]
    ds = datasets.load_dataset(
        "webdataset",
        data_files={"train": files},
        split="train",
        features=features,
        cache_dir=str(tmp_path),
    )
    assert len(ds) == len(unique_keys(packed))
    assert set(ds.column_names) == {"__key__", "__url__", "mp4", "json", "refs.jpg"}
    tracks = {tuple(j["tracks"]) for j in ds["json"]}
    assert tracks == {("montage",), ("montage", "subject")}


def test_ray_data_reads_the_packed_shards(packed: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True)
    try:
        # the folder holds index.parquet and manifest.json too: tars only
        ds = ray.data.read_webdataset(str(packed / "packed"), decoder=None, file_extensions=["tar"])
        rows = ds.take_all()
    finally:
        ray.shutdown()
    assert {r["__key__"] for r in rows} == unique_keys(packed)
    assert all(json.loads(r["json"])["key"] == r["__key__"] for r in rows)


def test_webloader_with_shuffled_shards_and_four_workers(packed: Path) -> None:
    wds = pytest.importorskip("webdataset")
    urls = expand_shard_list(str(packed / "packed"), split="train")
    assert len(urls) >= 4
    dataset = wds.WebDataset(urls, shardshuffle=len(urls), seed=0, empty_check=False).shuffle(4)
    loader = wds.WebLoader(dataset, batch_size=None, num_workers=4)
    keys = [s["__key__"] for s in loader]
    assert sorted(keys) == sorted(unique_keys(packed))  # every sample once, none lost


def test_pyarrow_reads_the_tables(packed: Path) -> None:
    index = pq.read_table(packed / "packed" / "index.parquet")
    tracks = set(index.column("track").to_pylist())
    assert tracks == {"montage", "subject"}
    films = pq.read_table(packed / "films.parquet")
    assert films.num_rows >= 3
