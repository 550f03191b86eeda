"""muss_builder.curation.text: the sizes the PP-OCRv4 detector sees, and line tracking."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from muss_builder.curation.text import (
    aligned_lines,
    line_motion,
    scene_motion,
    sized_side,
    text_detector,
)


@pytest.mark.parametrize(
    ("h", "w", "side"),
    [(480, 854, 854), (1080, 1920, 1920), (358, 854, 637), (480, 640, 854), (854, 480, 854),
     (720, 720, 1280), (90, 116, 160)],
)  # fmt: skip
def test_sized_side_is_the_long_side_of_a_16_9_picture_as_tall(h: int, w: int, side: int) -> None:
    assert sized_side(h, w) == side


def test_every_picture_gets_the_rows_of_a_16_9_one() -> None:
    """Type is sized to the picture's height: a 2.39:1 crop of a 480-line film goes to the
    detector with as many rows as the 16:9 film, at the screen and at the measuring size."""
    detector = text_detector()
    scope = detector._probability(np.zeros((358, 854, 3), np.uint8), 448)
    wide = detector._probability(np.zeros((480, 854, 3), np.uint8), 448)
    assert scope.shape[0] == wide.shape[0] == 256 and scope.shape[1] > wide.shape[1]
    panorama = detector._probability(np.zeros((200, 1600, 3), np.uint8), 448)
    assert panorama.shape[1] <= 2 * 448  # never more than twice the side along the long one
    assert detector._probability(np.zeros((640, 360, 3), np.uint8), 448).shape == (448, 256)
    # a 4:3 picture, too, gets the rows of the 16:9 one, not a third more
    assert detector._probability(np.zeros((480, 640, 3), np.uint8), 448).shape == (256, 320)


def test_line_motion_tells_a_moving_line_from_a_fixed_one() -> None:
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (270, 960), np.uint8)
    cv2.putText(picture, "HOTEL MIRAMAR", (300, 240), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    box = [290, 215, 470, 250]
    first, panned = picture[:, :480], picture[:, 40:520]  # the camera moves 40 px right
    stay, best, (dx, dy) = line_motion(first, panned, box, 0.2)
    assert best > 0.9 and stay < 0.5 and (dx, dy) == (pytest.approx(-40 / 480), 0)
    scene, (sx, sy) = scene_motion(first, panned, box, 0.2)  # the picture above moved alike
    assert scene > 0.9 and (sx, sy) == (pytest.approx(-40 / 480), 0)
    stay, best, shift = line_motion(first, first, box, 0.2)  # a frame-fixed line
    assert stay == pytest.approx(1.0, abs=1e-3) and shift == (0, 0)
    crawl = first.copy()  # the line moved 40 px left over a picture that stayed
    crawl[box[1] : box[3], box[0] - 40 : box[2] - 40] = first[box[1] : box[3], box[0] : box[2]]
    assert line_motion(first, crawl, box, 0.2)[2] == (pytest.approx(-40 / 480), 0)
    assert scene_motion(first, crawl, box, 0.2)[1] == (0, 0)
    flat = np.full((270, 480), 128, np.uint8)
    assert line_motion(flat, first, box, 0.2) == (0.0, 0.0, (0.0, 0.0))  # nothing to match
    assert line_motion(first, picture, box, 0.2) == (0.0, 0.0, (0.0, 0.0))  # another size


def test_aligned_lines_counts_the_largest_column() -> None:
    card = [[100, 10 + 30 * i, 380, 30 + 30 * i] for i in range(4)]  # centred on x = 240
    assert aligned_lines(card, 480, 0.03) == 4
    left = [[40, 10 + 30 * i, 200 + 20 * i, 30 + 30 * i] for i in range(5)]  # one left edge
    assert aligned_lines(left, 480, 0.03) == 5
    scattered = [[20, 24, 200, 40], [300, 54, 420, 70], [110, 100, 260, 124], [236, 146, 440, 160]]
    assert aligned_lines(scattered, 480, 0.03) == 1
    assert aligned_lines(scattered, 480, 1.0) == 4 and aligned_lines([], 480, 0.03) == 0
