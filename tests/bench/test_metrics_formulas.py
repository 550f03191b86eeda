"""The metric formulas of docs/bench-metrics.md, pinned on constructed arrays with known values.

No model runs here: each metric's function takes embeddings, poses or cut frames directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from muss_builder.bench.metrics import (
    BenchModelsConfig,
    acp_var,
    copy_paste_index,
    inter_shot_consistency,
    match_cuts,
    parse_yes_no,
    pose_vector,
    reference_similarity,
    subject_consistency,
    text_alignment,
)
from muss_builder.bench.metrics.score import sample_frames


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Inter-shot consistency


def test_identical_shots_are_perfectly_consistent() -> None:
    frames = unit_vectors(4, 16, 0)
    assert inter_shot_consistency([frames, frames.copy(), frames[::-1]]) == pytest.approx(1.0)


def test_consistency_is_the_mean_pairwise_cosine_of_shot_means() -> None:
    e = np.eye(4)
    # shots along e0, e0 and e1: pairs (0, 1), (0, 2), (1, 2) have cosines 1, 0, 0
    assert inter_shot_consistency([e[[0]], e[[0]], e[[1]]]) == pytest.approx(1 / 3)
    # a shot's embedding is the normalised mean of its frames: (e0 + e1) / sqrt 2 vs e0
    assert inter_shot_consistency([e[[0, 1]], e[[0]]]) == pytest.approx(1 / math.sqrt(2))
    # opposite shots: -1; a single shot: not computable
    assert inter_shot_consistency([e[[2]], -e[[2]]]) == pytest.approx(-1.0)
    assert inter_shot_consistency([e[[2]]]) is None
    with pytest.raises(ValueError, match="embeddings"):
        inter_shot_consistency([np.zeros((0, 4)), e[[0]]])


def test_subject_consistency_averages_subjects_seen_in_two_shots() -> None:
    e = np.eye(3)
    per_subject = {
        "S1": [e[[0]], e[[0]]],  # the same in both shots: 1
        "S2": [e[[1]], e[[2]]],  # a different look in each: 0
        "S3": [e[[2]]],  # one shot only: left out
    }
    assert subject_consistency(per_subject) == pytest.approx(0.5)
    assert subject_consistency({"S3": [e[[2]]]}) is None


# ---------------------------------------------------------------------------------------------
# Transition deviation and shot-cut accuracy


def test_exact_cuts_have_no_deviation_and_full_accuracy() -> None:
    match = match_cuts([24, 48, 72], [72, 24, 48], tolerance=8)
    assert match.deviation == 0.0 and match.accuracy == 1.0
    assert match.missed == 0 and match.extra == 0


@pytest.mark.parametrize("d", [1, 3, 8])
def test_a_cut_moved_by_d_frames_deviates_by_d(d: int) -> None:
    match = match_cuts([24, 48], [24 + d, 48], tolerance=8)
    assert match.deviation == pytest.approx(d / 2)  # the mean over both cuts
    assert match_cuts([24], [24 - d], tolerance=8).deviation == d
    # NSD = (d / W) / |R|
    assert match.accuracy == pytest.approx(math.exp(-(d / 8) / 2))


def test_missed_and_extra_cuts_cost_one_each() -> None:
    missed = match_cuts([24, 48], [24], tolerance=8)
    assert (missed.missed, missed.extra, missed.deviation) == (1, 0, 0.0)
    assert missed.accuracy == pytest.approx(math.exp(-1 / 2))
    extra = match_cuts([24, 48], [24, 36, 48], tolerance=8)
    assert (extra.missed, extra.extra) == (0, 1)
    assert extra.accuracy == pytest.approx(math.exp(-1 / 2))
    # beyond the tolerance a late cut is a miss AND an extra, worse than any matched cut
    late = match_cuts([24], [33], tolerance=8)
    assert (late.missed, late.extra, late.deviation) == (1, 1, None)
    assert late.accuracy == pytest.approx(math.exp(-2))
    assert late.accuracy < match_cuts([24], [32], 8).accuracy == pytest.approx(math.exp(-1))
    # no cut asked: any detected cut is extra, normalised by 1
    assert match_cuts([], [], 8).accuracy == 1.0
    assert match_cuts([], [10, 20], 8).accuracy == pytest.approx(math.exp(-2))


def test_cut_matching_is_one_to_one_nearest_first() -> None:
    # two detections near one requested cut: the nearer is matched, the other is extra
    match = match_cuts([24], [22, 25], tolerance=8)
    assert match.pairs == [(24, 25)] and match.extra == 1
    with pytest.raises(ValueError, match="tolerance"):
        match_cuts([24], [24], tolerance=0)


# ---------------------------------------------------------------------------------------------
# ACP-Var and the copy-paste index (our own definitions)


def test_acp_var_is_zero_for_the_reference_pose_and_grows_with_deviation() -> None:
    box = (100.0, 50.0, 180.0, 150.0)
    ref = pose_vector(5.0, -3.0, 2.0, box)
    assert ref == pytest.approx([5.0, -3.0, 2.0, 0.0, math.log(80 / 100)])
    pasted = np.stack([pose_vector(5.0, -3.0, 2.0, box, expected_face_height=100.0)] * 6)
    assert acp_var(pasted, ref) == 0.0
    # yaw 10 degrees off and the face twice the pasted size, in every frame:
    # z = (1, 0, 0, log 2 / 0.1, 0) -> mean square (1 + (10 log 2)^2) / 5
    moved = pose_vector(15.0, -3.0, 2.0, (100.0, 50.0, 260.0, 250.0), expected_face_height=100.0)
    assert acp_var(moved[None], ref) == pytest.approx((1 + (10 * math.log(2)) ** 2) / 5)


def test_acp_var_is_identity_gated() -> None:
    ref = np.zeros(5)
    gen = np.array([[0.0] * 5, [30.0, 0, 0, 0, 0]])  # the second is far from the pose...
    assert acp_var(gen, ref) == pytest.approx((0 + 9 / 5) / 2)
    # ...but is another person (identity 0.1 < gate 0.3): only the first counts
    assert acp_var(gen, ref, identity=[0.9, 0.1], gate=0.3) == 0.0
    assert acp_var(gen, ref, identity=[0.1, 0.1], gate=0.3) is None
    with pytest.raises(ValueError, match="pose vectors"):
        acp_var(np.zeros((2, 3)), ref)
    with pytest.raises(ValueError, match="positive size"):
        pose_vector(0, 0, 0, (10, 10, 10, 20))


def test_copy_paste_index_is_one_for_a_paste_and_minus_one_for_the_target() -> None:
    ref = np.array([1.0, 0.0, 0.0])
    target = np.array([0.0, 1.0, 0.0])  # 90 degrees from the reference
    assert copy_paste_index(ref, target, ref) == pytest.approx(1.0)
    assert copy_paste_index(target, target, ref) == pytest.approx(-1.0)
    halfway = np.array([1.0, 1.0, 0.0])
    assert copy_paste_index(halfway, target, ref) == pytest.approx(0.0, abs=1e-12)
    # 30 degrees from the reference towards the target: (60 - 30) / 90
    towards = np.array([math.cos(math.radians(30)), math.sin(math.radians(30)), 0.0])
    assert copy_paste_index(towards, target, ref) == pytest.approx(1 / 3)
    # target and reference nearly the same picture: undefined
    assert copy_paste_index(ref, np.array([1.0, 0.01, 0.0]), ref) is None


# ---------------------------------------------------------------------------------------------
# Text alignment, reference similarity, the judge's answers, frame sampling, the config


def test_text_alignment_is_the_mean_frame_caption_cosine() -> None:
    text = np.array([1.0, 0.0])
    frames = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])  # cosines 1, 0, 1
    assert text_alignment(frames, text) == pytest.approx(2 / 3)


def test_reference_similarity_uses_the_mean_generated_embedding() -> None:
    ref = np.array([0.0, 2.0])
    assert reference_similarity(np.array([[0.0, 1.0], [0.0, 3.0]]), ref) == pytest.approx(1.0)
    assert reference_similarity(np.array([[1.0, 0.0], [0.0, 1.0]]), ref) == pytest.approx(
        1 / math.sqrt(2)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.", True),
        ("no", False),
        ("  NO, they differ", False),
        ("I think yes", True),
        ("The answer is no.", False),
        ("Maybe", None),
        ("well, yes and no", None),
        ("", None),
        (None, None),
        ("Nothing fits", None),  # "nothing" is not "no"
    ],
)
def test_yes_no_answers_are_parsed(text: str | None, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


def test_frames_are_sampled_inside_the_shot_away_from_its_edges() -> None:
    assert sample_frames(0, 24, 4) == [4, 9, 14, 19]
    assert all(50 <= f < 54 for f in sample_frames(50, 54, 4))
    assert sample_frames(10, 11, 4) == [10]


def test_bad_bench_model_configs_are_named() -> None:
    with pytest.raises(ValidationError, match="frames_per_shot"):
        BenchModelsConfig.model_validate({"frames_per_shot": 0})
    with pytest.raises(ValidationError, match="frame_embeder"):
        BenchModelsConfig.model_validate({"frame_embeder": "pixels"})
    with pytest.raises(ValidationError, match="unknown shot detector"):
        BenchModelsConfig(shot_detector="nope")
