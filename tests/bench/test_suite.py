"""The benchmark suite drawn from a real build: held-out films, scripts true to their samples,
references that never come from the shot they serve, the real clip it carries, and the sticker
baseline made from it. ``face_dataset`` (three people from shipped photos, two shots each:
subject samples with references) is the session one of tests/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.bench.metrics import read_video
from muss_builder.bench.perturb import load_crop_rgb, sticker, sticker_patch
from muss_builder.bench.suite import (
    Suite,
    SuiteError,
    choose_held_out,
    held_out_film_ids,
    holdout_score,
    load_suite,
    make_suite,
)
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.train.script import Script


def samples_by_key(dataset: Path) -> dict[str, dict]:
    docs = {}
    for shard in sorted((dataset / "shards").glob("*.tar")):
        for sample in iter_samples(shard):
            docs[sample.key] = load_sample_json(sample)
    return docs


@pytest.fixture(scope="module")
def face_suite(face_dataset: BuildSummary, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_suite(face_dataset.out, tmp_path_factory.mktemp("suite") / "s", n_scripts=10)


@pytest.fixture(scope="module")
def montage_suite(built_dataset: BuildSummary, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_suite(
        built_dataset.out, tmp_path_factory.mktemp("suite") / "m", n_scripts=20,
        holdout_fraction=0.5, seed=3,
    )  # fmt: skip


def test_holdout_rule_is_a_per_film_hash_threshold() -> None:
    films = [f"{i:016x}" for i in range(200)]
    held, rule = choose_held_out(films, 0.2, seed=7)
    assert held == sorted(f for f in films if holdout_score(f, 7) < 0.2)
    assert 20 < len(held) < 60 and "topped up" not in rule
    # a film's membership never depends on the other films
    more, _ = choose_held_out([*films, *(f"{i:016x}" for i in range(500, 700))], 0.2, seed=7)
    assert set(held) == set(more) & set(films)
    assert choose_held_out(films, 0.2, seed=8)[0] != held  # the seed re-draws
    tiny, rule = choose_held_out(films[:2], 1e-6, seed=7)
    assert len(tiny) == 1 and "topped up" in rule
    with pytest.raises(SuiteError, match="holdout_fraction"):
        choose_held_out(films, 0.0)


def test_held_out_films_are_disjoint_from_the_rest(
    montage_suite: Suite, built_dataset: BuildSummary
) -> None:
    import pyarrow.parquet as pq

    index = pq.read_table(built_dataset.out / "index.parquet").to_pylist()
    all_films = {r["film_id"] for r in index}
    held = held_out_film_ids(montage_suite.root)
    assert held and held < all_films  # some, not all, at this fraction and seed
    assert held == set(json.loads((montage_suite.root / "suite.json").read_text())["holdout"]
                       ["film_ids"])  # fmt: skip
    trained_on = {r["key"] for r in index if r["film_id"] not in held}
    assert trained_on and all(s.source["film_id"] in held for s in montage_suite.scripts)
    assert not {s.key for s in montage_suite.scripts} & trained_on


def test_scripts_follow_their_samples_and_carry_the_real_clip(
    montage_suite: Suite, built_dataset: BuildSummary
) -> None:
    docs = samples_by_key(built_dataset.out)
    assert montage_suite.scripts
    for script in montage_suite.scripts:
        doc = docs[script.key]
        lengths = [s["clip_end_frame"] - s["clip_start_frame"] for s in doc["shots"]]
        assert [s.n_frames for s in script.shots] == lengths
        assert script.cut_frames == [s["clip_start_frame"] for s in doc["shots"][1:]]
        assert script.n_frames == doc["clip"]["n_frames"]
        assert [s.caption for s in script.shots] == [s["caption"] for s in doc["shots"]]
        assert script.global_caption == doc["global_caption"]
        frames, fps = read_video(montage_suite.real_video(script.key))
        assert frames.shape[0] == script.n_frames and fps == pytest.approx(script.fps)
        assert frames.shape[1:3] == (script.height, script.width)
    again = load_suite(montage_suite.root)
    assert [s.to_dict() for s in again.scripts] == [s.to_dict() for s in montage_suite.scripts]


def test_references_never_come_from_a_shot_they_serve(
    face_suite: Suite, face_dataset: BuildSummary
) -> None:
    docs = samples_by_key(face_dataset.out)
    with_refs = [s for s in face_suite.scripts if s.references]
    assert with_refs and all(s.source["track"] == "subject" for s in with_refs)
    for script in with_refs:
        film_shots = script.source["film_shots"]
        for ref, origin in zip(script.references, script.source["references"], strict=True):
            assert origin["source_shot"] != film_shots[ref.shot]
            assert origin["fallback"] or origin["source_shot"] not in film_shots
            crop = cv2.imread(str(face_suite.root / ref.image))
            meta = docs[script.key]["references"][origin["reference"]]
            assert crop is not None and meta["subject"] == ref.subject
            start, end = script.shot_ranges[ref.shot]
            assert start <= ref.frame < end
            # the box holds the subject's ground-truth box at the target frame (grown 1.6x)
            ((_, truth),) = [fb for fb in script.shots[ref.shot].subjects[ref.subject]
                             if fb[0] == ref.frame]  # fmt: skip
            assert ref.box[0] <= truth[0] and ref.box[2] >= truth[2]
            assert ref.box[1] <= truth[1] and ref.box[3] >= truth[3]


def test_sticker_frames_hold_the_reference_pixels_at_the_box(face_suite: Suite) -> None:
    script: Script = next(s for s in face_suite.scripts if s.references)
    frames, _ = read_video(face_suite.real_video(script.key))
    made = sticker(frames, script, face_suite.root)
    height, width = frames.shape[1:3]
    for ref in script.references:
        patch, (x0, y0) = sticker_patch(
            load_crop_rgb(face_suite.root / ref.image), ref.box, width, height
        )
        ph, pw = patch.shape[:2]
        # scaled to the box's height, centred on it, aspect kept
        assert y0 == round(ref.box[1] * height) and ph == round(ref.box[3] * height) - y0
        if x0 > 0 and x0 + pw < width:  # not cut by the frame's left or right edge
            assert abs(x0 + pw / 2 - (ref.box[0] + ref.box[2]) / 2 * width) <= 1
            crop = load_crop_rgb(face_suite.root / ref.image)
            assert pw == pytest.approx(crop.shape[1] * ph / crop.shape[0], abs=1)
        start, end = script.shot_ranges[ref.shot]
        inside = made.frames[start:end, y0 : y0 + ph, x0 : x0 + pw]
        assert (inside == patch).all()  # every frame of the target shot, unchanged pixels
        assert not (frames[start:end, y0 : y0 + ph, x0 : x0 + pw] == patch).all()
    served = {ref.shot for ref in script.references}
    for k, (start, end) in enumerate(script.shot_ranges):
        if k not in served:
            assert (made.frames[start:end] == frames[start:end]).all()


def test_make_suite_refuses_what_it_cannot_use(tmp_path: Path, built_dataset: BuildSummary) -> None:
    with pytest.raises(SuiteError, match=r"no index\.parquet"):
        make_suite(tmp_path, tmp_path / "s")
    with pytest.raises(SuiteError, match="no subject samples"):
        make_suite(built_dataset.out, tmp_path / "s", tracks=("subject",), holdout_fraction=1.0)
    with pytest.raises(SuiteError, match="tracks"):
        make_suite(built_dataset.out, tmp_path / "s", tracks=("nope",))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "suite.json").write_text(json.dumps({"scripts": []}))
    with pytest.raises(SuiteError, match="not a suite"):
        load_suite(tmp_path / "bad")


def test_reference_crop_is_cut_from_the_shard_strip(
    face_suite: Suite, face_dataset: BuildSummary
) -> None:
    members = {}
    for shard in (face_dataset.out / "shards").glob("*.tar"):
        for sample in iter_samples(shard):
            members[sample.key] = sample.members
    script = next(s for s in face_suite.scripts if s.references)
    doc = json.loads(members[script.key]["json"])
    strip = cv2.imdecode(np.frombuffer(members[script.key]["refs.jpg"], np.uint8), 1)
    for ref, origin in zip(script.references, script.source["references"], strict=True):
        data = (face_suite.root / ref.image).read_bytes()
        crop = cv2.imdecode(np.frombuffer(data, np.uint8), 1)
        x0, y0, x1, y1 = doc["references"][origin["reference"]]["strip_box"]
        expected = strip[y0:y1, x0:x1].astype(np.int16)
        assert crop.shape == expected.shape
        assert np.abs(crop.astype(np.int16) - expected).mean() < 4  # one JPEG re-encode
