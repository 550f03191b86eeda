"""Measured shot facts: camera motion (``camera.py``), lighting (``lighting.py``) and shot
scale (here), with no model involved.

A captioning model asked "how does the camera move?" guesses, and guesses confidently. These
functions measure instead, from a few decoded frames of one shot, so a captioner can be told
the answer and asked only to phrase it. Everything is plain OpenCV/numpy on uint8 BGR frames,
deterministic, and cheap enough to run on every shot.

Shot scale
    From subject boxes (normalised to the frame). The cinematography scales are defined on the
    human figure, in head heights: a standing figure is about 7.5 heads tall, and a face
    detector's box is about one head. The frame height, counted in heads, names the scale:

    ====================  ==================  ======================  =================
    scale                 frame shows         heads in frame height   face box / frame
    ====================  ==================  ======================  =================
    extreme_close_up      part of the face    < 1.8                   >= 0.55
    close_up              head and shoulders  1.8 - 2.6               0.38 - 0.55
    medium_close_up       chest up            2.6 - 4                 0.25 - 0.38
    medium                waist up            4 - 6.25                0.16 - 0.25
    medium_long           knees up, or full   6.25 - 9                0.11 - 0.16
    long                  whole figure small  9 - 25                  0.04 - 0.11
    extreme_long          figure tiny         > 25                    < 0.04
    ====================  ==================  ======================  =================

    A person (or any other labelled) box is the whole visible figure: one that runs off the
    bottom of the frame while filling at least 90 % of its height is cut by the frame, at
    best waist up, so ``medium``; otherwise a figure at least 70 % of the frame height is
    ``medium_long`` (a full figure filling the frame), at least 30 % ``long``, and smaller
    ``extreme_long``. Each box implies a scale; the shot's scale is the tightest of them (the
    largest subject sets the framing), preferring a face's reading on ties since a face box
    measures the head directly. No boxes: ``long``, the commonest framing of a shot with no
    detected subject (landscapes, establishing shots), marked ``no subject: assumed``.
"""

from __future__ import annotations

SCALES = (
    "extreme_close_up",
    "close_up",
    "medium_close_up",
    "medium",
    "medium_long",
    "long",
    "extreme_long",
)
# face box height / frame height: the least fraction for each scale, tightest first
FACE_SCALE = (
    (0.55, "extreme_close_up"),
    (0.38, "close_up"),
    (0.25, "medium_close_up"),
    (0.16, "medium"),
    (0.11, "medium_long"),
    (0.04, "long"),
)
# figure box height / frame height, for a figure the frame does not cut
FIGURE_SCALE = ((0.70, "medium_long"), (0.30, "long"))
CUT_FIGURE_AT_LEAST = 0.90  # a box this tall that runs off the frame bottom: waist up at best
_BOTTOM_EDGE = 0.98  # a box reaching this far down touches the frame bottom
_KIND_PREFERENCE = {"face": 0, "person": 1}  # on equal scales, the more direct measurement


def _face_scale(fraction: float) -> str:
    return next((scale for least, scale in FACE_SCALE if fraction >= least), "extreme_long")


def _figure_scale(fraction: float, bottom: float) -> str:
    if fraction >= CUT_FIGURE_AT_LEAST and bottom >= _BOTTOM_EDGE:
        return "medium"
    return next((scale for least, scale in FIGURE_SCALE if fraction >= least), "extreme_long")


def shot_scale(boxes: list[tuple[str, tuple[float, float, float, float]]]) -> tuple[str, str]:
    """(scale, basis) from the subject that appears largest; see the module docstring."""
    readings = []
    for kind, (_x0, y0, _x1, y1) in boxes:
        top, bottom = min(max(y0, 0.0), 1.0), min(max(y1, 0.0), 1.0)
        fraction = bottom - top
        if fraction <= 0:  # a degenerate or off-frame box says nothing about framing
            continue
        scale = _face_scale(fraction) if kind == "face" else _figure_scale(fraction, bottom)
        rank = (SCALES.index(scale), _KIND_PREFERENCE.get(kind, 2), -fraction)
        readings.append((rank, scale, f"{kind} {fraction:.2f} of frame height"))
    if not readings:
        return "long", "no subject: assumed"
    _, scale, basis = min(readings)
    return scale, basis
