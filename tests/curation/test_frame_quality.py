"""The statistics behind the picture report: cell means exact on both grid paths, cell masks
that leave out bars and the logo, and range-split statistics equal to one pass."""

from __future__ import annotations

import numpy as np
import pytest

from muss_builder.curation.active_picture import ActivePictureDetector
from muss_builder.curation.frame_quality import (
    CellGrid,
    edges,
    held_frames,
    quality_flags,
    shot_quality,
)
from muss_builder.curation.picture_config import MEASURES, PictureConfig, WatermarkConfig
from muss_builder.curation.watermark import WatermarkStats, removal_plan


def frames(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w), np.uint8) for _ in range(n)]


@pytest.mark.parametrize("size", [(256, 144), (250, 137)])  # equal cells, then uneven ones
def test_cell_means_are_exact(size: tuple[int, int]) -> None:
    w, h = size
    grid = CellGrid(w, h, 16, 9, black_level=32)
    frame = frames(1, h, w)[0]
    grid.process(0, frame)
    xs, ys = edges(w, 16), edges(h, 9)
    brute = np.array(
        [[frame[ys[r] : ys[r + 1], xs[c] : xs[c + 1]].mean() for c in range(16)] for r in range(9)]
    )
    assert np.array_equal(grid.frames()[0, 0], np.round(brute).astype(np.uint8))
    dark = [[(frame[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] <= 32).mean() for c in range(16)]
            for r in range(9)]  # fmt: skip
    assert np.abs(grid.frames()[0, 1] / 255.0 - np.array(dark)).max() <= 0.5 / 255 + 1e-9


def test_cell_mask_leaves_out_bars_and_the_logo() -> None:
    grid = CellGrid(256, 144, 16, 9, black_level=32)
    mask = grid.cell_mask([0, 18, 256, 126], hole=[224, 20, 250, 40])
    assert mask.shape == (9, 16)
    # cell rows are 16 px: rows 0-1 and 7-8 hold some bar (bars end at 18 and start at 126)
    assert not mask[[0, 1, 7, 8]].any()
    assert mask[2:7, :14].all()
    assert not mask[2, 14:].any()  # the logo's cells (x 224-256, y 16-48)
    assert mask[3:7, 14:].all()


def test_ranges_keep_the_statistics_of_one_pass() -> None:
    shots = frames(60, 144, 256, seed=1)
    one_cells = CellGrid(256, 144, 16, 9, 32)
    one_marks = WatermarkStats(256, 144, WatermarkConfig(frame_step=2))
    one_bars = ActivePictureDetector(256, 144)
    for i, f in enumerate(shots):
        one_cells.process(i, f)
        one_marks.process(i, f)
        one_bars.process_frame(i, f)
    parts = []
    for first, stop in ((0, 25), (25, 50), (50, None)):
        cells = CellGrid(256, 144, 16, 9, 32, first, stop)
        marks = WatermarkStats(256, 144, WatermarkConfig(frame_step=2), first=first, stop=stop)
        bars = ActivePictureDetector(256, 144)
        lo = max(0, first - 5)  # margins before and after, as a range decode feeds them
        hi = len(shots) if stop is None else min(len(shots), stop + 5)
        for i in range(lo, hi):
            cells.process(i, shots[i])
            marks.process(i, shots[i])
            if i >= first and (stop is None or i < stop):
                bars.process_frame(i, shots[i])
        parts.append((cells, marks, bars))
    assert np.array_equal(CellGrid.stacked([p[0] for p in parts]), one_cells.frames())
    merged = WatermarkStats.merged([p[1] for p in parts])
    assert merged.frames == one_marks.frames == 30
    for key, value in one_marks.sums.items():
        assert np.allclose(merged.sums[key], value, rtol=1e-5), key
    joined = ActivePictureDetector.merged([p[2] for p in parts])
    cuts = [(0, 7), (7, 30), (30, 41), (41, 60)]  # blocks cut by range seams join again
    assert joined.shot_edges(cuts) == one_bars.shot_edges(cuts)
    assert joined.shot_evidence(cuts) == one_bars.shot_evidence(cuts)


def test_flags_follow_their_measures_and_switches() -> None:
    cfg = PictureConfig()
    frozen_still = np.zeros((20, 3, 9, 16), np.uint8)
    frozen_still[:, 0] = 120  # mid grey, nothing moves, nothing dark
    quality = shot_quality(frozen_still, np.ones((9, 16), bool), cfg)
    assert set(quality) == set(MEASURES) - {"shake"}  # shake: from ShakeTrack (test_shake.py)
    assert quality["frozen_share"] == 1.0 and quality_flags(quality, cfg) == ["static"]
    off = PictureConfig(static={"enabled": False})
    assert quality_flags(quality, off) == []
    black = np.zeros((20, 3, 9, 16), np.uint8)
    black[:, 1] = 255  # every pixel near-black
    q = shot_quality(black, np.ones((9, 16), bool), cfg)
    assert quality_flags(q, cfg) == ["black"]  # frozen as well, but black says it
    shaking = quality | {"frozen_share": 0.0, "shake": cfg.shaky.max_shake}
    assert quality_flags(shaking, cfg) == ["shaky"]
    assert quality_flags(shaking, PictureConfig(shaky={"enabled": False})) == []


def test_logo_removal_plan() -> None:
    logo, crop = [224, 20, 250, 40], [0, 0, 256, 144]
    assert removal_plan(logo, crop, WatermarkConfig()) == ("delogo", crop)
    cut = WatermarkConfig(removal="crop")
    assert removal_plan(logo, crop, cut) == ("crop", [0, 0, 224, 144])  # keeps 87.5 %
    strict = WatermarkConfig(removal="crop", crop_min_keep=0.9)
    assert removal_plan(logo, crop, strict) == ("delogo", crop)
    assert removal_plan(logo, crop, WatermarkConfig(removal="none")) == ("none", crop)


def test_a_hold_is_a_long_enough_run_of_cells_within_the_band() -> None:
    """Cell means held within 2 levels of the hold's first frame for 8 frames or more; grain
    (levels stepping 1-2 a frame about a fixed picture) does not break a hold, a slow drift
    that adds up past the band does, and a picture repeated for 3 frames is no hold."""
    rng = np.random.default_rng(0)
    picture = rng.integers(40, 200, 144).astype(np.int16)
    grainy_still = picture + rng.integers(-1, 2, (40, 144))  # each frame within 2 of any other
    assert held_frames(grainy_still.astype(np.uint8), 2, 8).all()
    drifting = picture + np.arange(40)[:, None] // 2  # half a level a frame: 2.5 over 5 frames
    held = held_frames(drifting.astype(np.uint8), 2, 8)
    assert not held.any(), held
    on_threes = picture + 10 * (np.arange(40)[:, None] // 3 % 2)  # a new drawing every 3 frames
    assert not held_frames(on_threes.astype(np.uint8), 2, 8).any()
    moving_then_frozen = np.concatenate(
        [picture + 10 * (np.arange(10)[:, None] % 2), grainy_still[:12]]
    )
    held = held_frames(moving_then_frozen.astype(np.uint8), 2, 8)
    assert held.tolist() == [False] * 10 + [True] * 12  # the freeze's first frame included
    assert not held_frames(grainy_still[:7].astype(np.uint8), 2, 8).any()  # too short a hold


def test_the_hold_is_set_in_seconds() -> None:
    cfg = PictureConfig()
    assert cfg.static.min_hold_frames(24) == 8 and cfg.static.min_hold_frames(60) == 21
    assert cfg.static.min_hold_frames(4) == 2  # never a single frame
    with pytest.raises(ValueError, match="frozen_diff is replaced by frozen_levels"):
        PictureConfig(static={"frozen_diff": 0.5})


def test_a_shot_shorter_than_a_hold_is_frozen_when_it_holds_throughout() -> None:
    cfg = PictureConfig()
    still = np.zeros((4, 3, 9, 16), np.uint8)
    still[:, 0] = 120
    assert shot_quality(still, np.ones((9, 16), bool), cfg)["frozen_share"] == 1.0
    still[2, 0] += 9  # a change inside: no hold of the whole shot
    assert shot_quality(still, np.ones((9, 16), bool), cfg)["frozen_share"] == 0.0
