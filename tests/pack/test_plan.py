"""The pack plan on synthetic film lists (no media): split shares and their stability, the
seeded interleave (every sample once, mixing, the open-film bound) and shard boundaries; and
shard lists given as folders, brace patterns, globs and manifests on a local disk."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from muss_builder.pack.families import brace_pattern, family_of, serving, split_summary
from muss_builder.pack.plan import (
    Boundaries,
    assign_splits,
    film_order,
    interleave,
    parse_splits,
    resolve_films,
)
from muss_builder.pack.shardlist import expand_shard_list
from muss_builder.pack.source import SourceFilm, SourceShard


def _films(n: int, samples: int = 10, start: int = 0) -> list[SourceFilm]:
    films = []
    for i in range(start, start + n):
        film_id = f"{i:016x}"
        shard = SourceShard(f"{film_id}-00000.tar", 1000 * samples, "0" * 64, samples, "")
        films.append(SourceFilm(film_id, f"film{i}.mp4", samples, (shard,)))
    return films


def test_parse_splits() -> None:
    assert parse_splits("train=0.98,validation=0.01,test=0.01") == {
        "train": 0.98,
        "validation": 0.01,
        "test": 0.01,
    }
    for bad, why in [
        ("train=0.9", "add up to 0.9"),
        ("train=1,train=0", "twice"),
        ("Train=1", "lowercase"),
        ("train=x", "not a number"),
        ("train=1.5,test=-0.5", "between 0 and 1"),
        ("", "no splits"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_splits(bad)


def test_split_shares_and_stability() -> None:
    shares = {"train": 0.8, "validation": 0.1, "test": 0.1}
    films = _films(4000)
    splits = assign_splits(films, shares, seed=1, test_films=set())
    counts = Counter(splits.values())
    for name, share in shares.items():
        assert abs(counts[name] / len(films) - share) < 0.03, counts
    # more films later, same seed: no film changes split (a test film never moves to train)
    grown = assign_splits(_films(4500), shares, seed=1, test_films=set())
    assert all(grown[k] == v for k, v in splits.items())
    other = assign_splits(films, shares, seed=2, test_films=set())
    assert other != splits
    named = assign_splits(films, shares, seed=1, test_films={films[0].film_id})
    assert named[films[0].film_id] == "test"
    with pytest.raises(ValueError, match="needs a 'test' split"):
        assign_splits(films, {"train": 1.0}, seed=1, test_films={films[0].film_id})
    zero = assign_splits(films, {"train": 1.0, "test": 0.0}, 1, set())
    assert set(zero.values()) == {"train"}


def test_resolve_films_by_id_or_input_name() -> None:
    films = _films(3)
    assert resolve_films(films, ["film1.mp4", films[2].film_id]) == {
        films[1].film_id,
        films[2].film_id,
    }
    with pytest.raises(ValueError, match=r"nope\.mp4"):
        resolve_films(films, ["nope.mp4"])


def test_interleave_mixes_films_and_bounds_open_streams() -> None:
    counts = [50] * 200
    picks = list(interleave(counts, seed=3, split="train", window=16))
    assert Counter(picks) == dict(enumerate(counts))  # every sample exactly once
    assert picks == list(interleave(counts, seed=3, split="train", window=16))
    assert picks != list(interleave(counts, seed=4, split="train", window=16))
    # never more than `window` films open: a film opens at its first pick, closes at its last
    first = {f: picks.index(f) for f in set(picks)}
    last = {f: len(picks) - 1 - picks[::-1].index(f) for f in set(picks)}
    open_at = [sum(first[f] <= i <= last[f] for f in first) for i in range(0, len(picks), 97)]
    assert max(open_at) <= 16
    # mixing: a run of 100 samples (a shard of 100) holds many films, few back-to-back repeats
    for start in range(0, len(picks) - 100, 1000):
        assert len(set(picks[start : start + 100])) >= 10
    repeats = sum(a == b for a, b in itertools.pairwise(picks))
    assert repeats / len(picks) < 0.15
    assert film_order(_films(5), 1) != film_order(_films(5), 2)


def test_boundaries_uniform_shards() -> None:
    films = _films(10, samples=100)  # 1,000 samples of ~1,000 bytes
    plan = Boundaries.plan(films, 30_000, None)
    assert plan.n_shards == -(-plan.total // 30_000)
    each = plan.total / 1000  # the samples' bytes, as the records' sizes estimate them
    sizes, done, shard, current = [], 0.0, 0, 0.0
    for _ in range(1000):
        if current and plan.cut_before(shard, done, each, False):
            sizes.append(current)
            shard, current = shard + 1, 0.0
        current += each
        done += each
    sizes.append(current)
    assert len(sizes) == plan.n_shards
    assert max(sizes) - min(sizes) <= 1.01 * each  # uniform to a sample: no small last shard
    by_count = Boundaries.plan(films, None, 64)
    assert by_count.n_shards == 16 and not by_count.by_bytes and by_count.weight(10**6) == 1


def test_shard_lists_on_a_local_disk(tmp_path: Path) -> None:
    for name in ["train-00000.tar", "train-00001.tar", "test-00000.tar"]:
        (tmp_path / name).write_bytes(b"x")
    manifest = {
        "shards": [
            {"name": "train-00000.tar", "split": "train"},
            {"name": "train-00001.tar", "split": "train"},
            {"name": "test-00000.tar", "split": "test"},
        ],
        "splits": {"train": {}, "test": {}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    train = [str(tmp_path / "train-00000.tar"), str(tmp_path / "train-00001.tar")]
    assert expand_shard_list(str(tmp_path), split="train") == train
    assert expand_shard_list(str(tmp_path / "manifest.json"))[-1] == str(
        tmp_path / "test-00000.tar"
    )
    assert expand_shard_list(str(tmp_path / "train-{00000..00001}.tar")) == train
    assert expand_shard_list([str(tmp_path / "train-*.tar"), train[0]]) == train
    with pytest.raises(ValueError, match="no split 'val'"):
        expand_shard_list(str(tmp_path), split="val")
    with pytest.raises(FileNotFoundError, match=r"train-00002\.tar"):
        expand_shard_list(str(tmp_path / "train-{00000..00002}.tar"))
    with pytest.raises(FileNotFoundError, match="nothing matches"):
        expand_shard_list(str(tmp_path / "val-*.tar"))
    (tmp_path / "manifest.json").unlink()
    assert len(expand_shard_list(str(tmp_path))) == 3  # a folder of tars


def test_shard_families_and_their_patterns() -> None:
    from braceexpand import braceexpand

    assert family_of(["montage"]) == "montage" and family_of(["subject"]) == "subject"
    assert family_of(["subject", "montage"]) == "both"
    with pytest.raises(ValueError, match="no shard family"):
        family_of([])
    assert serving("montage") == ("montage", "both") and serving("subject") == ("both", "subject")
    assert brace_pattern("train", {"both": 2}) == "train-both-{00000..00001}.tar"
    assert brace_pattern("train", {"montage": 0}) is None
    nested = brace_pattern("train", {"subject": 1, "montage": 3})
    assert list(braceexpand(nested)) == [
        "train-montage-00000.tar",
        "train-montage-00001.tar",
        "train-montage-00002.tar",
        "train-subject-00000.tar",
    ]
    shards = [
        {"name": n, "family": n.split("-")[1], "n_samples": 2, "size_bytes": 10}
        for n in ["train-montage-00000.tar", "train-both-00000.tar", "train-both-00001.tar"]
    ]
    summary = split_summary("train", shards, n_films=4)
    assert summary["n_shards"] == 3 and summary["n_samples"] == 6 and summary["n_films"] == 4
    assert summary["families"]["subject"] == {
        "n_shards": 0, "n_samples": 0, "size_bytes": 0, "pattern": None
    }  # fmt: skip
    assert summary["tracks"]["subject"]["pattern"] == "train-both-{00000..00001}.tar"
    assert summary["tracks"]["montage"]["n_samples"] == 6
    assert list(braceexpand(summary["pattern"])) == [s["name"] for s in shards]


def test_shard_lists_by_track(tmp_path: Path) -> None:
    names = ["train-montage-00000.tar", "train-both-00000.tar", "test-subject-00000.tar"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    shards = [{"name": n, "split": n.split("-")[0], "family": n.split("-")[1]} for n in names]
    manifest = {"shards": shards, "splits": {"train": {}, "test": {}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    path = [str(tmp_path / n) for n in names]
    assert expand_shard_list(str(tmp_path), track="montage") == path[:2]
    assert expand_shard_list(str(tmp_path), track="subject") == path[1:]
    assert expand_shard_list(str(tmp_path / "manifest.json"), "train", "subject") == path[1:2]
    with pytest.raises(ValueError, match="no track 'both'"):
        expand_shard_list(str(tmp_path), track="both")
    with pytest.raises(ValueError, match="a track is picked by a pack's manifest"):
        expand_shard_list(str(tmp_path / "train-*.tar"), track="montage")
    for shard in shards:
        del shard["family"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no families"):
        expand_shard_list(str(tmp_path), track="montage")
