"""A built and packed dataset, read the way its users read it: Hugging Face ``datasets`` (by
the card, per track, and as plain webdataset with the card's features), Ray Data,
``webdataset`` with shard shuffling and four loader workers, and pyarrow on the tables. Real
builds (the session's tiny-config synthetic films and a film of real faces where people stay
over several shots, merged without re-encoding), real packing, real readers; no mocks. The
packed build has samples of all three shard families: montage only (the synthetic films),
both tracks and subject only (subject windows)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.pack.shardlist import expand_shard_list
from muss_builder.pack.validate import check_packed
from muss_builder.report.card import write_card
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.testing.synthetic_films import SyntheticFilm


@pytest.fixture(scope="module")
def packed(three_families: Path, film30: SyntheticFilm) -> Path:
    """Packed into one-sample shards (a loader gets more shards than workers): every film in
    train but ``film30``, held out for test (its samples serve the montage track only)."""
    options = PackOptions(
        seed=0,
        target_samples=1,
        splits={"train": 1.0, "test": 0.0},
        test_films=(film30.path.name,),
    )
    pack_build(str(three_families), None, options)
    write_card(three_families)
    return three_families


def unique_keys(out: Path, split: str | None = "train") -> set[str]:
    rows = pq.read_table(out / "packed" / "index.parquet").to_pylist()
    return {r["key"] for r in rows if split is None or r["split"] == split}


def sample_tracks(shards: list[Path]) -> dict[str, list[str]]:
    """key -> its json's tracks, over the shards; a key seen twice fails the test."""
    found: dict[str, list[str]] = {}
    for shard in shards:
        for sample in iter_samples(shard, load={"json"}):
            assert sample.key not in found, f"{sample.key} stored twice"
            found[sample.key] = load_sample_json(sample)["tracks"]
    return found


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
    info = yaml.safe_load(head)["dataset_info"][0]
    features = datasets.Features._from_yaml_list(info["features"])
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
    assert tracks == {("montage",), ("montage", "subject"), ("subject",)}


def test_ray_data_reads_the_packed_shards(packed: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True)
    try:
        # the folder holds index.parquet and manifest.json too: tars only
        ds = ray.data.read_webdataset(str(packed / "packed"), decoder=None, file_extensions=["tar"])
        rows = ds.take_all()
    finally:
        ray.shutdown()
    assert {r["__key__"] for r in rows} == unique_keys(packed, split=None)
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


def test_load_dataset_reads_each_track_by_its_config(packed: Path, tmp_path: Path) -> None:
    """``load_dataset(OUT, "subject")`` gives exactly the samples whose json's tracks include
    "subject", ``"montage"`` those with "montage", per split, each clip once; every clip is
    stored once, in the shards of the family of its tracks."""
    datasets = pytest.importorskip("datasets")
    manifest = json.loads((packed / "packed" / "manifest.json").read_text())
    families = {(s["split"], s["family"]) for s in manifest["shards"]}
    assert families == {
        ("train", "montage"),
        ("train", "both"),
        ("train", "subject"),
        ("test", "montage"),
    }
    stored: dict[str, list[str]] = {}
    for entry in manifest["shards"]:
        assert entry["name"].startswith(f"{entry['split']}-{entry['family']}-")
        in_shard = sample_tracks([packed / "packed" / entry["name"]])
        assert all(t == manifest["families"][entry["family"]] for t in in_shard.values())
        assert not set(in_shard) & set(stored), "a clip stored twice"
        stored |= in_shard
    assert set(stored) == unique_keys(packed, split=None)
    assert check_packed(str(packed / "packed")).problems == []  # families checked too
    split_of = {k: s for s in ("train", "test") for k in unique_keys(packed, s)}
    for track, splits in (("montage", {"train", "test"}), ("subject", {"train"})):
        ds = datasets.load_dataset(str(packed), track, cache_dir=str(tmp_path / track))
        assert set(ds) == splits  # test holds montage-only samples: no subject split
        keys = [k for split in ds.values() for k in split["__key__"]]
        assert len(keys) == len(set(keys))  # each clip once
        assert set(keys) == {k for k, tracks in stored.items() if track in tracks}
        for split, rows in ds.items():
            assert {split_of[k] for k in rows["__key__"]} == {split}
            assert all(track in j["tracks"] for j in rows["json"])
    both = datasets.load_dataset(str(packed), cache_dir=str(tmp_path / "default"))
    assert sorted(k for split in both.values() for k in split["__key__"]) == sorted(stored)
    # the manifest's per-track patterns name the same shards
    train = manifest["splits"]["train"]["tracks"]["subject"]
    urls = expand_shard_list(str(packed / "packed" / train["pattern"]))
    assert urls == expand_shard_list(str(packed / "packed"), split="train", track="subject")
    assert (
        len(urls) == train["n_shards"]
        and sum(len(sample_tracks([Path(u)])) for u in urls) == (train["n_samples"])
    )
