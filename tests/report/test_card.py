"""The dataset card (``OUT/README.md``): written by every build, read by Hugging Face
``datasets`` as the dataset's configs and features, and telling the truth about the build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from muss_builder.config import PipelineConfig
from muss_builder.report.card import PIPELINE_FILE, CardFacts, configs, write_card
from muss_builder.runtime.build import BuildSummary


def card_parts(out: Path) -> tuple[dict, str]:
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_every_build_writes_a_card_and_its_config(built_dataset: BuildSummary) -> None:
    out = Path(built_dataset.out)
    header, body = card_parts(out)
    assert [c["config_name"] for c in header["configs"]] == ["default"]
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "shards/*.tar"}]
    # the resolved config is kept, and it is the one the build hashed
    config = PipelineConfig.model_validate(yaml.safe_load((out / PIPELINE_FILE).read_text()))
    assert config.fingerprint() == built_dataset.stats["config_hash"]
    assert f"`{config.fingerprint()}`" in body
    films = pq.read_table(out / "films.parquet").to_pylist()
    assert f"| films given | {len(films)} |" in body
    assert str(out) not in body  # nothing of this machine's paths


def test_card_features_are_valid_hugging_face_features(built_dataset: BuildSummary) -> None:
    datasets = pytest.importorskip("datasets")
    header, _ = card_parts(Path(built_dataset.out))
    # one entry per config, each with every feature (a config without them would infer)
    infos = header["dataset_info"]
    assert [i["config_name"] for i in infos] == [c["config_name"] for c in header["configs"]]
    features = datasets.Features._from_yaml_list(infos[0]["features"])
    assert set(features) >= {"__key__", "__url__", "mp4", "json"}
    shots = features["json"]["shots"]
    # a list of structs, every field typed (none left to inference)
    inner = shots.feature if hasattr(shots, "feature") else shots[0]
    assert inner["clip_start_frame"].dtype == "int64"
    assert inner["facts"]["camera"]["kind"].dtype == "string"


def test_card_names_the_face_models_restriction_first(face_dataset: BuildSummary) -> None:
    header, body = card_parts(Path(face_dataset.out))
    assert header["license"] == "other"
    restriction = body.index("**Licence restriction: faces")
    assert restriction < body.index("| role | model |")
    assert "non-commercial research only" in body
    assert "TransNetV2" in body and "MIT" in body


def test_load_dataset_reads_the_build_by_its_card(
    face_dataset: BuildSummary, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "out"
    shutil.copytree(face_dataset.out, out)
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    keys = {r["key"] for r in pq.read_table(out / "index.parquet").to_pylist()}
    assert set(ds["__key__"]) == keys
    row = ds.cast_column("mp4", datasets.Video(decode=False))[0]
    assert row["mp4"]["bytes"][4:8] == b"ftyp"
    assert row["json"]["key"] == row["__key__"]
    assert row["json"]["shots"][0]["clip_start_frame"] == 0


def test_card_is_rewritten_from_the_folder_alone(built_dataset: BuildSummary, tmp_path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(built_dataset.out, out)
    (out / "README.md").unlink()
    text = write_card(out)
    assert (out / "README.md").read_text() == text
    assert text == (Path(built_dataset.out) / "README.md").read_text()


def test_configs_name_the_shard_families_of_each_track() -> None:
    """Per split, a track's config names the families serving it that have shards there (a
    glob that names no file fails ``load_dataset``); a split without any has no entry."""
    placed = [("train", "montage"), ("train", "both"), ("train", "subject"), ("test", "montage")]
    shards = [
        {"name": f"{split}-{family}-00000.tar", "split": split, "family": family}
        for split, family in placed
    ]
    splits = {"train": {"n_shards": 3}, "validation": {"n_shards": 0}, "test": {"n_shards": 1}}
    found = configs(CardFacts(manifest={"splits": splits, "shards": shards}))
    assert found == [
        {
            "config_name": "default",
            "default": True,
            "data_files": [
                {"split": "train", "path": "packed/train-*.tar"},
                {"split": "test", "path": "packed/test-*.tar"},
            ],
        },
        {
            "config_name": "montage",
            "data_files": [
                {
                    "split": "train",
                    "path": ["packed/train-montage-*.tar", "packed/train-both-*.tar"],
                },
                {"split": "test", "path": "packed/test-montage-*.tar"},
            ],
        },
        {
            "config_name": "subject",
            "data_files": [
                {
                    "split": "train",
                    "path": ["packed/train-both-*.tar", "packed/train-subject-*.tar"],
                }
            ],
        },
        {"config_name": "per_film", "data_files": [{"split": "train", "path": "shards/*.tar"}]},
    ]
