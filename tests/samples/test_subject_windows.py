"""Subject windows in a build: a film of real faces where people stay on screen over several
shots (each shot on a backdrop of its own, so most cuts are scene breaks): windows chosen
around a subject, serving the subject track only, with references from outside."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from muss_builder.config import PipelineConfig, ScenesConfig
from muss_builder.runtime.build import build
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.shards.validate import validate_dataset
from muss_builder.testing.face_film import Person, encode_stills, render_shot

# who is on screen in each shot: person 0 stays for two shots and comes back, person 1
# stays for two shots at the end; everyone is seen elsewhere too (references)
ORDER = [0, 0, 1, 0, 2, 1, 2, 0, 1, 1]


@pytest.fixture(scope="module")
def subject_build(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: PipelineConfig, people: list[Person]
) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("subject-windows")
    rng = np.random.default_rng(7)
    encode_stills(root / "stay.mp4", [render_shot(people[p], rng) for p in ORDER], 24)
    config = tiny_config.model_copy(update={"scenes": ScenesConfig(cross_scene=False)})
    summary = build([str(root / "stay.mp4")], root / "out", config, executor="inline")
    out = Path(summary.out)
    samples = [
        load_sample_json(s)
        for shard in sorted((out / "shards").glob("*.tar"))
        for s in iter_samples(shard, load={"json"})
    ]
    return out, samples


def _holds(shot: dict, subject: str) -> bool:
    return any(s["id"] == subject for s in shot["subjects"])


def test_subject_windows_are_chosen_around_their_subject(subject_build) -> None:
    out, samples = subject_build
    chosen = [s for s in samples if s["window"]["kind"] == "subject"]
    assert chosen, [s["window"] for s in samples]
    for sample in chosen:
        window, shots = sample["window"], sample["shots"]
        subject = window["subject"]
        assert sample["tracks"] == ["subject"]
        assert sample["focus_subjects"][0] == subject
        assert _holds(shots[0], subject) and _holds(shots[-1], subject)
        held = sum(_holds(shot, subject) for shot in shots)
        assert held >= 0.6 * len(shots) and f"{held} of {len(shots)} shots" in window["reason"]
        # it crosses a scene break only where the subject is on both sides of it
        for a, b in itertools.pairwise(shots):
            if a["facts"]["scene"] != b["facts"]["scene"]:
                assert _holds(a, subject) and _holds(b, subject)
        inside = {shot["film_shot_index"] for shot in shots}
        assert all(
            ref["source_shot"] not in inside or ref["fallback"] for ref in sample["references"]
        )
    assert validate_dataset(out) == []


def test_montage_stays_in_a_scene_and_no_shot_passes_the_reuse_cap(subject_build) -> None:
    out, samples = subject_build
    for sample in samples:
        scenes = {shot["facts"]["scene"] for shot in sample["shots"]}
        if sample["window"]["kind"] != "subject":
            assert sample["window"]["kind"] == "scene" and len(scenes) == 1
        assert sample["window"]["scenes"] == sorted(scenes)
    record = json.loads(next((out / "films").glob("*.json")).read_text())
    for shot in record["shots"]:
        assert len(shot["sample_keys"]) <= 2  # samples.max_shot_uses
        if shot["sample_keys"]:
            assert shot["sample_key"] == shot["sample_keys"][0]
    uses = {
        (s["key"], shot["film_shot_index"]): n
        for s in samples
        for shot, n in zip(s["shots"], s["window"]["shot_uses"], strict=True)
    }
    for (_key, index), n in uses.items():
        assert n == len(record["shots"][index]["sample_keys"])
    rows = pq.read_table(out / "index.parquet").to_pylist()
    by_kind = {(r["window_kind"], r["track"]) for r in rows}
    assert ("subject", "subject") in by_kind and ("subject", "montage") not in by_kind
