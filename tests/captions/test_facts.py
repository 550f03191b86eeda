"""Shot scale from subject boxes (the cinematography scales, in head heights)."""

from __future__ import annotations

import pytest

from muss_builder.captions.facts import SCALES, shot_scale


def face(height: float, top: float = 0.1) -> tuple[str, tuple[float, float, float, float]]:
    return "face", (0.4, top, 0.6, top + height)


def figure(top: float, bottom: float, kind: str = "person") -> tuple:
    return kind, (0.3, top, 0.5, bottom)


@pytest.mark.parametrize(
    ("boxes", "scale", "basis"),
    [
        ([], "long", "no subject: assumed"),
        ([face(0.8)], "extreme_close_up", "face 0.80 of frame height"),
        ([face(0.55)], "extreme_close_up", "face 0.55 of frame height"),
        ([face(0.45)], "close_up", "face 0.45 of frame height"),
        ([face(0.30)], "medium_close_up", "face 0.30 of frame height"),
        ([face(0.20)], "medium", "face 0.20 of frame height"),
        ([face(0.13)], "medium_long", "face 0.13 of frame height"),
        ([face(0.06)], "long", "face 0.06 of frame height"),
        ([face(0.02)], "extreme_long", "face 0.02 of frame height"),
        # a figure cut by the frame top and bottom: waist up at best
        ([figure(0.0, 1.0)], "medium", "person 1.00 of frame height"),
        # the same height, but feet in frame: a full figure filling the frame
        ([figure(0.02, 0.97)], "medium_long", "person 0.95 of frame height"),
        ([figure(0.1, 0.9)], "medium_long", "person 0.80 of frame height"),
        ([figure(0.4, 0.8)], "long", "person 0.40 of frame height"),
        ([figure(0.6, 0.7)], "extreme_long", "person 0.10 of frame height"),
        # the largest subject sets the scale, whichever kind it is
        ([figure(0.0, 1.0), face(0.45)], "close_up", "face 0.45 of frame height"),
        ([face(0.02), figure(0.1, 0.9)], "medium_long", "person 0.80 of frame height"),
        ([face(0.1), face(0.3, top=0.5)], "medium_close_up", "face 0.30 of frame height"),
        # equal scales: the face, a direct measure of the head, is the basis
        ([figure(0.0, 1.0), face(0.2)], "medium", "face 0.20 of frame height"),
        ([figure(0.3, 0.8, "dog")], "long", "dog 0.50 of frame height"),
        # boxes are clipped to the frame; empty ones are no subject
        ([figure(-0.2, 1.3)], "medium", "person 1.00 of frame height"),
        ([face(0.0)], "long", "no subject: assumed"),
    ],
)
def test_shot_scale(boxes: list, scale: str, basis: str) -> None:
    assert shot_scale(boxes) == (scale, basis)
    assert scale in SCALES
