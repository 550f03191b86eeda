"""The broken baselines, made from real clips of a real build: shuffled shots keep the shot
lengths and come from other samples, moved cuts land exactly d frames away (found in the
written mp4 by pixel differences, not by the metric under test). The sticker is pinned in
test_suite.py, beside the face build it needs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from muss_builder.bench.metrics import read_video
from muss_builder.bench.perturb import make_variants, move_cuts, resample, shuffle_shots
from muss_builder.bench.suite import Suite, make_suite
from muss_builder.runtime.build import BuildSummary
from muss_builder.testing.synthetic_films import cut_frames_in
from muss_builder.train.script import Script, ScriptShot


@pytest.fixture(scope="module")
def suite(built_dataset: BuildSummary, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_suite(
        built_dataset.out, tmp_path_factory.mktemp("perturb") / "suite", n_scripts=4,
        holdout_fraction=1.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def variants(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("variants")
    return make_variants(suite.root, out, ("shuffled", "moved_cuts"), d=5, seed=1)


def test_resample_keeps_order_and_length() -> None:
    frames = np.arange(10).reshape(10, 1, 1, 1).astype(np.uint8)
    assert resample(frames, 5).ravel().tolist() == [0, 2, 4, 6, 8]
    assert resample(frames, 13).ravel().tolist() == sorted(resample(frames, 13).ravel().tolist())
    assert len(resample(frames, 13)) == 13 and resample(frames, 13)[0] == 0


def test_moved_cuts_land_exactly_d_frames_away(suite: Suite, variants: dict[str, Path]) -> None:
    records = json.loads((variants["moved_cuts"] / "perturbations.json").read_text())
    assert len(suite.scripts) >= 2
    for script in suite.scripts:
        record = records[script.key]
        assert record["d"] == 5 and [abs(m) for m in record["moves"]] == [5] * len(
            script.cut_frames
        )
        moved = [c + m for c, m in zip(script.cut_frames, record["moves"], strict=True)]
        path = variants["moved_cuts"] / f"{script.key}.mp4"
        assert cut_frames_in(path, (script.width, script.height)) == moved
        real = cut_frames_in(suite.real_video(script.key), (script.width, script.height))
        assert real == script.cut_frames  # the real clip cuts where the script says
        frames, _ = read_video(path)
        assert frames.shape[0] == script.n_frames


def test_move_cuts_moves_earlier_when_the_last_shot_is_short() -> None:
    frames = np.repeat(np.arange(3, dtype=np.uint8) * 80, [10, 10, 3])[:, None, None, None]
    frames = np.broadcast_to(frames, (23, 2, 2, 3)).copy()
    script = Script("k", "", [ScriptShot("a", 10), ScriptShot("b", 10), ScriptShot("c", 3)])
    made = move_cuts(frames, script, 4)
    assert made.record["moves"] == [-4, -4] and made.record["cuts"] == [6, 16]
    values = made.frames[:, 0, 0, 0].tolist()
    assert values == [0] * 6 + [80] * 10 + [160] * 7
    with pytest.raises(ValueError, match="too short"):
        move_cuts(frames, script, 12)
    with pytest.raises(ValueError, match="frames"):
        move_cuts(frames[:20], script, 2)


def test_shuffled_shots_keep_lengths_and_come_from_other_samples(
    suite: Suite, variants: dict[str, Path]
) -> None:
    records = json.loads((variants["shuffled"] / "perturbations.json").read_text())
    real = {s.key: read_video(suite.real_video(s.key))[0] for s in suite.scripts}
    scripts = {s.key: s for s in suite.scripts}
    for script in suite.scripts:
        donors = records[script.key]["donors"]
        assert len(donors) == len(script.shots)
        assert all(d["donor"] != script.key for d in donors)
        assert len({d["donor"] for d in donors}) == min(len(donors), len(suite.scripts) - 1)
        film = script.source["film_id"]
        n_other = sum(s.source["film_id"] != film for s in suite.scripts)
        first = donors[: min(len(donors), n_other)]  # other films' samples first
        assert n_other and all(scripts[d["donor"]].source["film_id"] != film for d in first)
        frames, _ = read_video(variants["shuffled"] / f"{script.key}.mp4")
        assert frames.shape[0] == script.n_frames  # same lengths, so the same cuts
        for donor, (start, end) in zip(donors, script.shot_ranges, strict=True):
            d_start, d_end = scripts[donor["donor"]].shot_ranges[donor["donor_shot"]]
            expected = resample(real[donor["donor"]][d_start:d_end], end - start)
            # the donor's pixels (through one more H.264 encode)
            error = np.abs(frames[start:end].astype(int) - expected.astype(int)).mean()
            assert error < 6, (script.key, donor, error)
            own = np.abs(frames[start:end].astype(int) - real[script.key][start:end]).mean()
            assert own > error


def test_shuffle_needs_two_samples(suite: Suite) -> None:
    script = suite.scripts[0]
    frames = np.zeros((script.n_frames, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="two scripts"):
        shuffle_shots({script.key: frames}, [script])
