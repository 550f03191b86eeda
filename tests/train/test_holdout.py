"""Held-out films (a benchmark suite's) never reach the trainer: whole shards of excluded films
are dropped before the rank/worker split, samples of excluded films in other shards are
skipped before decoding, both counted, and the latent cache leaves them out too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from muss_builder.bench.suite import held_out_film_ids, make_suite
from muss_builder.shards.reader import ShardSample, iter_samples
from muss_builder.shards.writer import FilmShardWriter
from muss_builder.train.cache import LatentShardDataset, cache_latents
from muss_builder.train.data import DataConfig, ShardClipDataset
from muss_builder.train.loader import ResumableLoader
from muss_builder.train.stream import ShardStream

CLIPS = dict(fps=8, buckets=[(32, 32)], frames_per_shot_max=5, ref_size=16, shuffle_buffer=0)


class KeyStream(ShardStream):
    """The real stream machinery with a decode that only reads the key (no ffmpeg)."""

    def decode(self, sample: ShardSample) -> str:
        self.stats["samples"] += 1
        return sample.key

    def shape_key(self, item: str) -> str:
        return item[0]


def film(key: str) -> str:
    return key.split("_")[0]


def test_config_validates_and_sorts_film_ids() -> None:
    cfg = DataConfig(exclude_film_ids=["00000000000000bb", "00000000000000aa", "00000000000000bb"])
    assert cfg.exclude_film_ids == ["00000000000000aa", "00000000000000bb"]
    assert DataConfig().exclude_film_ids == []
    for bad in (["ABCDEF0123456789"], ["abc"], ["../00000000000000"]):
        with pytest.raises(ValidationError, match="16 lowercase hex"):
            DataConfig(exclude_film_ids=bad)


def test_excluded_film_yields_nothing_and_the_others_everything(built_dataset) -> None:
    shards = sorted((built_dataset.out / "shards").glob("*.tar"))
    keys = {s.key for shard in shards for s in iter_samples(shard)}
    films = sorted({film(k) for k in keys})
    assert len(films) == 2
    held = films[0]
    stream = ShardClipDataset(shards, DataConfig(**CLIPS, exclude_film_ids=[held]))
    got = [ex.key for ex in stream]
    assert sorted(got) == sorted(k for k in keys if film(k) != held) and got
    held_shards = [s for s in shards if s.name.startswith(held)]
    assert stream.stats["skipped_holdout_shards"] == len(held_shards) >= 1
    assert held_shards[0] not in stream.shards  # never opened
    with pytest.raises(ValueError, match="all 2 shards belong to the 2 excluded"):
        ShardClipDataset(shards, DataConfig(**CLIPS, exclude_film_ids=films))


def test_samples_of_excluded_films_in_mixed_shards_are_not_decoded(
    built_dataset, tmp_path: Path
) -> None:
    # a shard not named after one film: the key decides, and before any decoding (the held
    # film's clips are made undecodable, so decoding one would raise)
    writer = FilmShardWriter(tmp_path, "mixed", max_bytes=1 << 30)
    keys = []
    for shard in sorted((built_dataset.out / "shards").glob("*.tar")):
        for sample in iter_samples(shard):
            members = dict(sample.members)
            keys.append(sample.key)
            if film(sample.key) == film(keys[0]):
                members["mp4"] = b"not a video"
            writer.write(sample.key, members)
    (mixed,) = [tmp_path / info.name for info in writer.close()]
    held = film(keys[0])
    stream = ShardClipDataset([mixed], DataConfig(**CLIPS, exclude_film_ids=[held]))
    got = [ex.key for ex in stream]
    assert sorted(got) == sorted(k for k in keys if film(k) != held)
    assert stream.stats["skipped_holdout"] == sum(film(k) == held for k in keys) >= 1
    assert stream.stats["errors"] == 0
    assert stream.shards == [mixed]


@pytest.mark.parametrize("workers", [0, 2])
def test_split_over_ranks_and_workers_covers_the_rest_once(one_sample_shards, workers) -> None:
    keys = sorted(one_sample_shards.docs)
    held = film(keys[0])
    expected = sorted(k for k in keys if film(k) != held)
    got, skipped = [], 0
    for rank in range(2):
        stream = KeyStream(
            one_sample_shards.paths,
            shuffle_buffer=3,
            rank=rank,
            world_size=2,
            exclude_film_ids=[held],
        )
        items = list(ResumableLoader(stream, num_workers=workers))
        assert stream.stats["samples"] == len(items)  # counted once, workers summed
        got += items
        skipped = stream.stats["skipped_holdout_shards"]  # the same on every rank
    assert sorted(got) == expected  # none of the held film, every other sample exactly once
    assert skipped == sum(film(k) == held for k in keys)


def test_resume_state_is_tied_to_the_excluded_films(one_sample_shards) -> None:
    held = film(sorted(one_sample_shards.docs)[0])
    paths = one_sample_shards.paths

    def stream(exclude: list[str]) -> KeyStream:
        return KeyStream(paths, seed=5, shuffle_buffer=3, exclude_film_ids=exclude)

    full = list(ResumableLoader(stream([held]), num_workers=0))
    loader = ResumableLoader(stream([held]), num_workers=0)
    first = [next(iter(loader))]
    state = json.loads(json.dumps(loader.state_dict()))
    resumed = ResumableLoader(stream([held]), num_workers=0)
    resumed.load_state_dict(state)
    assert first + list(resumed) == full
    with pytest.raises(ValueError, match="excluded films"):
        stream([]).load_state_dict(state)  # resuming without the hold-out would differ


@pytest.mark.slow
def test_latent_cache_leaves_the_held_out_film_out(
    built_dataset, tiny_encoders, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    suite = make_suite(built_dataset.out, tmp_path / "suite", n_scripts=1, holdout_fraction=1e-6)
    held = held_out_film_ids(suite.root)
    assert len(held) == 1
    shards = sorted((built_dataset.out / "shards").glob("*.tar"))
    kept = [s for s in shards if s.name.split("-")[0] not in held]
    cfg = DataConfig(**{**CLIPS, "max_shots": 2}, exclude_film_ids=sorted(held))
    vae, text = tiny_encoders
    stale = tmp_path / "cache" / "shards" / next(s.name for s in shards if s not in kept)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")  # as if cached by an earlier run without the exclusion
    summary = cache_latents(shards, tmp_path / "cache", cfg, vae, text, dtype="float32")
    assert sorted(summary.written) == [s.name for s in kept]
    assert "cached shards of excluded films are already in" in caplog.text
    stale.unlink()
    assert summary.stats["skipped_holdout_shards"] == len(shards) - len(kept)
    manifest = json.loads((tmp_path / "cache" / "cache.json").read_text())
    assert manifest["data_config"]["exclude_film_ids"] == sorted(held)
    cached = [ex.key for ex in LatentShardDataset(tmp_path / "cache", shuffle_buffer=0)]
    assert cached and not {film(k) for k in cached} & held
    with pytest.raises(ValueError, match="nothing is left"):
        LatentShardDataset(tmp_path / "cache", exclude_film_ids=sorted({film(cached[0])}))
