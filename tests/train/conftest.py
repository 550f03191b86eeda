"""Shards for the trainer's data tests, built by the real pipeline, plus tiny random encoders.

``face_dataset`` (subject-track samples with reference crops) lives in tests/conftest.py,
shared with the bench tests so the session builds it once.
``one_sample_shards``: every sample of ``built_dataset`` and ``face_dataset`` re-packed one
per shard (by the project's shard writer), so rank/worker splits have shards to share out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.writer import FilmShardWriter


@dataclass(frozen=True)
class PackedShards:
    paths: list[Path]
    docs: dict[str, dict]  # sample key -> its json


@pytest.fixture(scope="session")
def one_sample_shards(
    tmp_path_factory: pytest.TempPathFactory,
    built_dataset: BuildSummary,
    face_dataset: BuildSummary,
) -> PackedShards:
    out = tmp_path_factory.mktemp("one-sample-shards")
    docs: dict[str, dict] = {}
    paths: list[Path] = []
    for dataset in (built_dataset, face_dataset):
        for shard in sorted((dataset.out / "shards").glob("*.tar")):
            film_id = shard.name.split("-")[0]
            writer = FilmShardWriter(out, film_id, max_bytes=1)  # 1 byte: a shard per sample
            for sample in iter_samples(shard):
                writer.write(sample.key, sample.members)
                docs[sample.key] = json.loads(sample.members["json"])
            paths += [out / info.name for info in writer.close()]
    return PackedShards(sorted(paths), docs)


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random Wan VAE and T5 encoder saved to disk and loaded back (set up)."""
    from muss_builder.train.encoders import (
        TextEncoder,
        WanVAE,
        make_tiny_text_encoder,
        make_tiny_vae,
    )

    root = tmp_path_factory.mktemp("tiny-encoders")
    vae = WanVAE(make_tiny_vae(root / "vae")).setup()
    text = TextEncoder(make_tiny_text_encoder(root / "text_encoder")).setup()
    return vae, text
