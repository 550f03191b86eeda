"""Sharpness of a keyframe, and blur judged against the film's own shots.

The measure is the no-reference blur metric of Crété-Roffet et al. ("The blur effect:
perception and estimation with a new no-reference perceptual blur metric", SPIE 2007): blur
the picture again with a 9-tap box filter along rows, then along columns, and see how much of
its neighbour-to-neighbour variation survives. A sharp picture loses much of it, a blurred one
almost none. It is a *ratio* of variations, so it depends on how sharp the edges are rather
than on how many edges there are: a plain sky and a crowd score alike when both are in focus,
which the variance of the Laplacian (the plain recipe) does not do. ``sharpness`` is
``1 - blur``: 0 (no detail survives a re-blur: fully blurred) .. 0.6-0.9 (crisp).

Size: the metric is computed at a fixed pixel budget (``WORK_PIXELS``, about 427x240) so that a
1280-pixel keyframe and a 854-pixel one are judged at the same scale of detail; smaller
pictures are enlarged to it (on the 320x180 curation set, measured at their own size, the
blurred shots' margin to the clean ones halves). 240 lines,
not the keyframe's own size: footage that is merely soft (an upscale, an old lens, a shallow
focus) still has its structure at that scale, a shot out of focus has not; at 360 lines the
soft clips of the curation set read as blurred as the gblurred ones (docs/fragments).

A film's soft or upscaled footage is soft in every shot: ``judge_blur`` compares each shot with
the median of the film's shots, so such a film gets no ``blurry`` flags, while an out-of-focus
shot in a sharp film stands out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

WORK_PIXELS = 427 * 240  # a 16:9 picture at 240 lines: the scale at which focus is judged
REBLUR_TAPS = 9  # Crété-Roffet's strong low-pass: a 9-pixel box along one direction
# grey-level standard deviation below which a picture (or a tile) has nothing to judge focus
# by: a black hold, a plain card, a clear sky. A blurred picture keeps its contrast (a blur
# moves grey levels around, it does not flatten them), so it is still judged
MIN_CONTRAST = 5.0
GRID = 3  # 3 x 3 tiles of the working picture (142 x 80 at 427 x 240)
TOP_TILES = 3  # the in-focus part of a shallow-focus shot covers a third of the picture


def working_grey(image: np.ndarray, pixels: int = WORK_PIXELS) -> np.ndarray:
    """Grey float32 at ``pixels`` pixels, whatever the keyframe's size: the 9-tap re-blur
    then spans the same share of every picture (a smaller keyframe is enlarged, cubic)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape
    scale = math.sqrt(pixels / max(1, h * w))
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    if size != (w, h):
        shrink = scale < 1.0
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return grey.astype(np.float32)


def sharpness(
    image: np.ndarray, grid: int = GRID, top: int = TOP_TILES, pixels: int = WORK_PIXELS
) -> tuple[float, float]:
    """(sharpness 0..1, contrast): ``1 -`` the Crété-Roffet blur of the picture's sharpest tiles
    (the mean of the ``top`` best of a ``grid`` x ``grid`` split, each tile taking the blurrier
    of its two directions), and the picture's grey-level standard deviation.

    Tiles, not the whole picture: a shallow-focus shot (a sharp subject over a soft background)
    is in focus where it matters; a defocused or blurred shot has no sharp tile at all.
    """
    grey = working_grey(image, pixels)
    h, w = grey.shape
    th, tw = (h - 1) // grid, (w - 1) // grid  # the differences are one line shorter
    tile_blur = np.zeros((grid, grid), np.float64)
    for axis, ksize in ((0, (1, REBLUR_TAPS)), (1, (REBLUR_TAPS, 1))):
        reblurred = cv2.blur(grey, ksize)
        d_f = np.abs(np.diff(grey, axis=axis))
        d_v = np.maximum(0.0, d_f - np.abs(np.diff(reblurred, axis=axis)))
        s_f = _tile_sums(d_f, grid, th, tw)
        s_v = _tile_sums(d_v, grid, th, tw)
        blur = np.where(s_f > 0, (s_f - s_v) / np.maximum(s_f, 1e-9), 1.0)
        tile_blur = np.maximum(tile_blur, blur)
    n = th * tw
    mean = _tile_sums(grey, grid, th, tw) / n
    tile_std = np.sqrt(np.maximum(0.0, _tile_sums(grey * grey, grid, th, tw) / n - mean**2))
    # tiles with no contrast (sky, a black corner) say nothing about focus
    usable = (1.0 - tile_blur)[tile_std >= MIN_CONTRAST]
    contrast = float(grey.std())
    if usable.size == 0:
        return 0.0, contrast
    best = np.sort(usable)[::-1][:top]
    return float(best.mean()), contrast


def _tile_sums(values: np.ndarray, grid: int, th: int, tw: int) -> np.ndarray:
    cut = values[: grid * th, : grid * tw]
    return cut.reshape(grid, th, grid, tw).sum(axis=(1, 3), dtype=np.float64)


def judge_blur(
    shot_sharpness: Sequence[float],
    judged: Sequence[bool],
    relative_threshold: float,
    min_reference_shots: int,
    absolute_floor: float | None,
) -> tuple[list[float], list[bool], float | None]:
    """(sharpness relative to the film per shot, blurry per shot, the film's reference).

    The reference is the median sharpness of the ``judged`` shots (those with contrast, and not
    text cards): robust to a minority of blurred shots. With fewer than
    ``min_reference_shots`` judged shots the median is no reference (two shots: which one is
    the soft one?), so only ``absolute_floor`` (when set) can flag a shot.
    """
    ref_values = [s for s, ok in zip(shot_sharpness, judged, strict=True) if ok]
    reference = float(np.median(ref_values)) if ref_values else None
    rel = [s / reference if reference else 1.0 for s in shot_sharpness]
    blurry = []
    for s, r, ok in zip(shot_sharpness, rel, judged, strict=True):
        relative = len(ref_values) >= min_reference_shots and r < relative_threshold
        floor = absolute_floor is not None and s < absolute_floor
        blurry.append(ok and (relative or floor))
    return rel, blurry, reference
