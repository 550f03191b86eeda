"""Keyframes: chosen inside the clean part of each shot, decoded frame-exactly (with seeks)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from muss_builder.media.decode import any_of
from muss_builder.media.probe import probe_film
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import keyframe_frames, read_keyframes
from muss_builder.testing.face_film import encode_stills


def shot(index: int, start: int, end: int, gradual: tuple[int, int] | None = None) -> Shot:
    kind = "dissolve" if gradual else ("start" if index == 0 else "cut")
    return Shot(index, start, end, start / 24, end / 24, kind, gradual)


def test_keyframes_spread_inside_shots_and_off_transitions() -> None:
    shots = [shot(0, 0, 48), shot(1, 48, 100, (40, 55)), shot(2, 100, 103)]
    chosen = keyframe_frames(shots, per_shot=3)
    assert chosen[0] == [6, 20, 33]  # evenly inside [0, 40): the dissolve starts at 40
    assert chosen[1] == [63, 78, 92]  # inside [56, 100): after the dissolve
    assert chosen[2] == [100, 101, 102]  # a 3-frame shot gives each of its frames once
    assert keyframe_frames(shots, per_shot=1)[1] == [78]


@pytest.fixture(scope="module")
def ramp_film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 frames at 24 fps, each showing its own index in binary (8 black/white stripes)."""
    path = tmp_path_factory.mktemp("ramp") / "ramp.mp4"
    stills = []
    for i in range(120):
        image = np.zeros((72, 128, 3), np.uint8)
        for bit in range(8):
            if i >> bit & 1:
                image[:, bit * 16 : (bit + 1) * 16] = 255
        stills.append(image)
    encode_stills(path, stills, shot_frames=1)
    return path


@pytest.mark.parametrize(("seek_gap", "per_decode"), [(100.0, 48), (0.5, 48), (100.0, 2)])
def test_read_keyframes_returns_exactly_the_chosen_frames(
    ramp_film: Path, seek_gap: float, per_decode: int
) -> None:
    probe = probe_film(str(ramp_film), film_id="0" * 16)
    frame_pts = np.arange(120) / 24.0 + 0.0
    chosen = {0: [3, 17], 1: [61], 2: [99, 118]}
    got = list(
        read_keyframes(
            str(ramp_film),
            probe,
            frame_pts,
            chosen,
            seek_gap_seconds=seek_gap,
            max_per_decode=per_decode,
        )
    )
    assert [(k.shot, k.frame) for k in got] == [(0, 3), (0, 17), (1, 61), (2, 99), (2, 118)]
    for k in got:
        assert k.image.shape == (72, 128, 3)
        stripes = [k.image[:, b * 16 + 4 : b * 16 + 12].mean() > 128 for b in range(8)]
        assert sum(int(on) << b for b, on in enumerate(stripes)) == k.frame


def test_over_a_hundred_frames_go_through_one_decode(ramp_film: Path) -> None:
    """118 chosen frames in one ``select``: summed as a flat chain, ffmpeg's evaluator refused
    an expression of over ~100 terms ("Cannot allocate memory"); nested, it takes them all."""
    probe = probe_film(str(ramp_film), film_id="0" * 16)
    frame_pts = np.arange(120) / 24.0
    chosen = {0: list(range(2, 60)), 1: list(range(60, 120))}
    got = list(read_keyframes(str(ramp_film), probe, frame_pts, chosen))
    assert [k.frame for k in got] == list(range(2, 120))
    for k in got:
        stripes = [k.image[:, b * 16 + 4 : b * 16 + 12].mean() > 128 for b in range(8)]
        assert sum(int(on) << b for b, on in enumerate(stripes)) == k.frame


def top_level_sums(expression: str) -> list[str]:
    """``expression`` split at the ``+`` signs outside every bracket."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(expression):
        depth += (char == "(") - (char == ")")
        if char == "+" and depth == 0:
            parts.append(expression[start:i])
            start = i + 1
    return [*parts, expression[start:]]


def test_any_of_nests_as_a_balanced_tree() -> None:
    terms = [f"eq(n,{i})" for i in range(400)]
    expression = any_of(terms)
    assert [int(t) for t in re.findall(r"eq\(n,(\d+)\)", expression)] == list(range(400))
    level, depth = [expression], 0
    while len(level[0]) > len(terms[0]):  # down the left edge: two bracketed halves each time
        halves = top_level_sums(level[0])
        assert len(halves) == 2 and all(h[0] == "(" and h[-1] == ")" for h in halves)
        level, depth = [h[1:-1] for h in halves], depth + 1
    assert depth == 8  # 400, 200, ..., 3, 1 down the left edge: ~log2(400) deep, not 400
    assert any_of(["eq(n,7)"]) == "eq(n,7)"
