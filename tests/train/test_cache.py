"""``train cache``'s engine: cached shards equal direct encoding, are byte-reproducible and
resumable, and stream back split, shuffled, batched and resumable like the clip stream."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from muss_builder.shards.reader import ShardFormatError, iter_samples
from muss_builder.shards.writer import FilmShardWriter
from muss_builder.train.cache import (
    LatentShardDataset,
    cache_latents,
    example_bytes,
    example_from_bytes,
    read_manifest,
)
from muss_builder.train.data import DataConfig, ShardClipDataset
from muss_builder.train.latents import encode_example
from muss_builder.train.loader import ResumableLoader

# two shots of 5 frames at 32x32: every sample has one latent shape, and encoding is cheap
CFG = DataConfig(
    fps=8, buckets=[(32, 32)], max_shots=2, frames_per_shot_max=5, ref_size=16, shuffle_buffer=8
)
FIELDS = (
    "latents",
    "text_embeds",
    "text_segments",
    "ref_latents",
    "ref_shots",
    "ref_boxes",
    "ref_latent_frames",
    "loss_weight",
)


@pytest.fixture(scope="module")
def cached(tmp_path_factory, face_dataset, tiny_encoders) -> tuple[Path, list[Path]]:
    vae, text = tiny_encoders
    shards = sorted((face_dataset.out / "shards").glob("*.tar"))
    out = tmp_path_factory.mktemp("cache")
    summary = cache_latents(shards, out, CFG, vae, text, subject_loss_weight=2.0, dtype="float32")
    # two windows, each one sample serving both tracks (docs/layout.md)
    assert summary.n_samples == 2 and summary.stats["samples"] == 2
    return out, shards


@pytest.mark.slow
def test_cache_round_trip_equals_direct_encoding(cached, tiny_encoders) -> None:
    vae, text = tiny_encoders
    out, shards = cached
    direct = {
        ex.key: encode_example(ex, vae, text, 2.0)
        for ex in ShardClipDataset(shards, CFG.model_copy(update={"shuffle_buffer": 0}))
    }
    back = {ex.key: ex for ex in LatentShardDataset(out / "shards", shuffle_buffer=0)}
    assert back.keys() == direct.keys()
    for key, ex in back.items():
        assert ex.shot_latent_frames == direct[key].shot_latent_frames
        for name in FIELDS:
            assert torch.equal(getattr(ex, name), getattr(direct[key], name)), (key, name)
    assert any(len(ex.ref_shots) for ex in back.values())
    manifest = read_manifest(out)
    assert manifest["written"] == {shards[0].name: 2} and manifest["dtype"] == "float32"
    assert DataConfig(**manifest["data_config"]) == CFG


@pytest.mark.slow
def test_cache_is_reproducible_and_resumable(cached, tiny_encoders, tmp_path) -> None:
    vae, text = tiny_encoders
    out, shards = cached
    again = cache_latents(
        shards, tmp_path, CFG, vae, text, subject_loss_weight=2.0, dtype="float32"
    )
    name = shards[0].name
    assert again.written == {name: 2}
    assert (tmp_path / "shards" / name).read_bytes() == (out / "shards" / name).read_bytes()
    rerun = cache_latents(shards, tmp_path, CFG, vae, text, dtype="float32")
    assert rerun.skipped_existing == [name] and rerun.written == {}
    assert not [p for p in (tmp_path / "shards").iterdir() if p.name.startswith(".")]


def test_bfloat16_storage_rounds_floats_only(cached) -> None:
    out, _ = cached
    for ex in LatentShardDataset(out, shuffle_buffer=0):
        back = example_from_bytes(example_bytes(ex, "bfloat16"))
        assert back.key == ex.key and back.shot_latent_frames == ex.shot_latent_frames
        assert torch.equal(back.latents, ex.latents.to(torch.bfloat16).float())
        assert torch.equal(back.ref_latent_frames, ex.ref_latent_frames)
        assert back.latents.dtype == torch.float32


def test_latent_stream_batches_split_and_resume(cached) -> None:
    out, _ = cached

    def stream(rank: int = 0, world: int = 1) -> LatentShardDataset:
        return LatentShardDataset(
            out, seed=5, shuffle_buffer=3, batch_size=1, rank=rank, world_size=world
        )

    full = list(ResumableLoader(stream()))
    keys = sorted(k for batch in full for k in batch.keys)
    assert len(keys) == 2 and len(set(keys)) == 2
    assert [batch.latents.shape[0] for batch in full] == [1, 1]
    loader = ResumableLoader(stream())
    first = next(iter(loader))
    resumed = ResumableLoader(stream())
    resumed.load_state_dict(loader.state_dict())
    rest = list(resumed)
    assert [first.keys] + [b.keys for b in rest] == [b.keys for b in full]
    # one shard: rank 1 of 2 gets nothing, rank 0 everything
    assert list(ResumableLoader(stream(1, 2))) == []


def test_bad_cached_member_is_refused_naming_it(cached, tmp_path) -> None:
    out, _ = cached
    (shard,) = sorted((out / "shards").glob("*.tar"))
    samples = list(iter_samples(shard))
    writer = FilmShardWriter(tmp_path, "cafe", max_bytes=10**9)
    writer.write(samples[0].key, {"safetensors": b"\x08" + b"\0" * 7 + b"{}"})
    bad = tmp_path / writer.close()[0].name
    with pytest.raises(ShardFormatError) as info:
        list(LatentShardDataset(bad))
    assert info.value.member == f"{samples[0].key}.safetensors"
