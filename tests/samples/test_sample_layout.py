"""The sample layout (docs/layout.md) on real builds: one clip per window serving both tracks,
the same members in every sample, and one JSON type per field across samples and configs.

Two builds: a film of real faces next to a film of colour cards (samples serving both tracks
and montage-only ones, captions and filters on), and the colour cards with captions, subjects
and filters off (every field that used to be null there). A reader that infers one schema
from the first samples (Arrow, Hugging Face ``datasets``) must get one from any mix of them.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from muss_builder.config import PipelineConfig
from muss_builder.core.naming import SAMPLE_MEMBERS
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.samples.ref_strip import PLACEHOLDER_SIDE, STRIP_HEIGHT, placeholder_strip
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.validate import validate_dataset
from muss_builder.testing.face_film import Person, make_face_film
from muss_builder.testing.synthetic_films import SyntheticFilm

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",  # apart from number: Arrow types 3 and 3.5 differently
    float: "number",
    type(None): "null",  # a type of its own: null in one sample and a value in another fails
}


@pytest.fixture(scope="module")
def both_tracks(
    tmp_path_factory: pytest.TempPathFactory,
    people: list[Person],
    twelve_film: SyntheticFilm,
    tiny_config: PipelineConfig,
) -> BuildSummary:
    root = tmp_path_factory.mktemp("layout")
    make_face_film(root / "faces.mp4", people[:3], shots_per_person=2, seed=1)
    films = [str(root / "faces.mp4"), str(twelve_film.path)]
    return build(films, root / "out", tiny_config, executor="inline")


@pytest.fixture(scope="module")
def all_off(
    tmp_path_factory: pytest.TempPathFactory,
    twelve_film: SyntheticFilm,
    tiny_config: PipelineConfig,
) -> BuildSummary:
    config = tiny_config.model_copy(
        update={
            "captions": tiny_config.captions.model_copy(update={"enabled": False}),
            "subjects": tiny_config.subjects.model_copy(update={"enabled": False}),
            "filters": tiny_config.filters.model_copy(update={"enabled": False}),
        }
    )
    out = tmp_path_factory.mktemp("layout-off") / "out"
    return build([str(twelve_film.path)], out, config, executor="inline")


def samples(*builds: BuildSummary) -> list[tuple[str, dict[str, bytes]]]:
    found = []
    for summary in builds:
        for shard in sorted((summary.out / "shards").glob("*.tar")):
            found += [(s.key, s.members) for s in iter_samples(shard)]
    return found


def walk(value: Any, path: str, types: dict[str, set[str]], keys: dict[str, set]) -> None:
    """Every JSON type seen at each path (``[]``: a list's items), and each object path's
    key sets."""
    types[path].add(_JSON_TYPES[type(value)])
    if isinstance(value, dict):
        keys[path].add(frozenset(value))
        for name, item in value.items():
            walk(item, f"{path}.{name}", types, keys)
    elif isinstance(value, list):
        for item in value:
            walk(item, f"{path}[]", types, keys)


def test_every_sample_has_the_same_members_and_each_field_one_type(
    both_tracks: BuildSummary, all_off: BuildSummary
) -> None:
    found = samples(both_tracks, all_off)
    docs = [json.loads(members["json"]) for _, members in found]
    # the builds cover what used to differ: both layouts of tracks, captions on and off,
    # references and none, gradual transitions and cuts
    assert {tuple(d["tracks"]) for d in docs} == {("montage",), ("montage", "subject")}
    assert {d["captioner"]["backend"] for d in docs} == {"facts", "none"}
    assert any(d["global_caption"] == "" for d in docs) and any(d["global_caption"] for d in docs)
    for key, members in found:
        assert sorted(members) == sorted(SAMPLE_MEMBERS), key
    types: dict[str, set[str]] = defaultdict(set)
    keys: dict[str, set] = defaultdict(set)
    for doc in docs:
        walk(doc, "$", types, keys)
    mixed = {path: sorted(seen) for path, seen in types.items() if len(seen) > 1}
    assert mixed == {}, f"fields with more than one JSON type across samples: {mixed}"
    # a key present in some objects and absent from others at the same place is the same
    # trouble for a reader inferring one schema
    uneven = {path: [sorted(k) for k in seen] for path, seen in keys.items() if len(seen) > 1}
    assert uneven == {}, f"objects whose keys differ across samples: {uneven}"


def test_a_sample_without_references_carries_the_placeholder_strip(
    both_tracks: BuildSummary,
) -> None:
    for _, members in samples(both_tracks):
        doc = json.loads(members["json"])
        if doc["references"]:
            assert doc["tracks"] == ["montage", "subject"] and doc["focus_subjects"]
            assert members["refs.jpg"] != placeholder_strip()
        else:
            assert doc["tracks"] == ["montage"] and doc["focus_subjects"] == []
            assert members["refs.jpg"] == placeholder_strip()


def test_no_clip_is_stored_twice_and_both_tracks_select_from_the_index(
    both_tracks: BuildSummary,
) -> None:
    found = samples(both_tracks)
    digests = [hashlib.sha256(members["mp4"]).hexdigest() for _, members in found]
    assert len(set(digests)) == len(digests) == len(found)
    tracks = {key: json.loads(members["json"])["tracks"] for key, members in found}
    index = pq.read_table(both_tracks.out / "index.parquet").to_pylist()
    by_track: dict[str, set[str]] = defaultdict(set)
    shard_of: dict[str, set[str]] = defaultdict(set)
    for row in index:
        by_track[row["track"]].add(row["key"])
        shard_of[row["key"]].add(row["shard"])
    # one row per (sample, track): every sample is a montage row, those with references a
    # subject row too, in the same shard
    assert by_track["montage"] == set(tracks)
    assert by_track["subject"] == {k for k, t in tracks.items() if "subject" in t}
    assert by_track["subject"] and by_track["montage"] - by_track["subject"]
    assert len(index) == sum(len(t) for t in tracks.values())
    assert all(len(shards) == 1 for shards in shard_of.values())
    assert {r["n_refs"] for r in index if r["track"] == "montage"} == {0}
    assert all(r["n_refs"] > 0 for r in index if r["track"] == "subject")
    stats = json.loads((both_tracks.out / "stats.json").read_text())
    assert stats["samples_in_index"] == len(found) and stats["index_rows"] == len(index)
    assert validate_dataset(both_tracks.out) == []


def test_hugging_face_datasets_loads_both_builds_by_their_cards(
    both_tracks: BuildSummary, all_off: BuildSummary, tmp_path: Path
) -> None:
    """The reader that failed on 1.0 layouts (issue 17). Each build's card declares its
    features (an empty list says nothing about its items, so a schema inferred from the first
    samples alone can still be wrong: docs/layout.md). Both builds declare the same features,
    captions and subjects on or off, so their samples go into one table."""
    datasets = pytest.importorskip("datasets")
    off, on = (
        datasets.load_dataset(str(b.out), split="train", cache_dir=str(tmp_path / name))
        for name, b in (("off", all_off), ("on", both_tracks))
    )
    assert off.features == on.features
    # the clip's bytes, not frames: video decoding needs torchcodec, not there on every CPU
    table = datasets.concatenate_datasets([off, on]).cast_column(
        "mp4", datasets.Video(decode=False)
    )
    found = samples(all_off, both_tracks)
    assert table.num_rows == len(found)
    assert set(table.column_names) == {"__key__", "__url__", *SAMPLE_MEMBERS}
    by_key = {row["__key__"]: row for row in table}
    for key, members in found:
        row, doc = by_key[key], json.loads(members["json"])
        assert row["json"]["tracks"] == doc["tracks"]
        assert row["json"]["focus_subjects"] == doc["focus_subjects"]
        assert [r["strip_box"] for r in row["json"]["references"]] == [
            r["strip_box"] for r in doc["references"]
        ]
        assert row["mp4"]["bytes"] == members["mp4"]
        strip = row["refs.jpg"]
        if doc["references"]:
            assert strip.size == (doc["references"][-1]["strip_box"][2], STRIP_HEIGHT)
        else:
            assert strip.size == (PLACEHOLDER_SIDE, PLACEHOLDER_SIDE)
