"""Samples never start or end inside a gradual transition, and carry its frames inside."""

from __future__ import annotations

import json

from muss_builder.runtime.build import build
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.shards.schemas import schema_errors
from muss_builder.testing.synthetic_films import make_transition_film

SEGMENTS = [
    (40, "", 0),
    (40, "dissolve", 12),
    (40, "cut", 0),
    (44, "fade_black", 14),
    (40, "cut", 0),
    (40, "wipe", 12),
    (40, "cut", 0),
    (40, "dissolve", 12),
    (40, "cut", 0),
]


def test_sample_edges_avoid_transitions(tmp_path, tiny_config) -> None:
    film = make_transition_film(tmp_path / "t.mp4", SEGMENTS)
    summary = build([str(film.path)], tmp_path / "out", tiny_config, executor="inline")
    assert summary.count("ok") == 1
    record = json.loads(next((tmp_path / "out" / "films").glob("*.json")).read_text())
    gradual = [
        (t["start_frame"], t["end_frame"]) for t in record["transitions"] if t["kind"] != "cut"
    ]
    assert len(gradual) >= 2  # (the tiny pipeline's 128-pixel analysis finds 2 of the 4)
    docs = [
        load_sample_json(s)
        for shard in (tmp_path / "out" / "shards").glob("*.tar")
        for s in iter_samples(shard)
    ]
    inner = 0
    for doc in docs:
        assert schema_errors("sample", doc) == []
        span = doc["span"]
        for start, end in gradual:
            # the first frame is not inside a transition, nor is the last (end is exclusive)
            assert not start <= span["start_frame"] <= end
            assert not start <= span["end_frame"] - 1 <= end
        assert doc["shots"][0]["transition_in"] == "start"
        for shot in doc["shots"][1:]:
            if shot["transition_in"] != "cut":
                inner += 1
                first, last = shot["transition_in_clip_frames"]
                assert 0 < first <= last < doc["clip"]["n_frames"]
    assert inner >= 1  # some sample holds a gradual transition inside it
