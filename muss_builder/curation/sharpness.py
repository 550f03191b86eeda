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

Edge width: a soft *picture* inside a sharp film (a small still enlarged, a webcam frame) reads as
little sharpness as a defocused shot, and no working scale tells them apart
(``benchmarks/curation/blur_scales.py``). What does is how far its edges spread: an edge width
after Marziliano et al. ("A no-reference perceptual blur metric", ICIP 2002), the extent of the
picture's strongest edges in pixels of the working picture (Marziliano walks to the grey-level
extremes on either side; here an edge ends where its slope falls under a tenth of its peak's,
so the gentle slope of a sky under it does not count). A soft picture's edges span a few pixels
more than a crisp one's; a defocus spreads them over the blur's whole extent
(``benchmarks/curation/edge_width.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

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
# the edges whose width is measured: the strongest 1 % of neighbour differences along each
# direction (the outlines that say where focus is), never weaker than MIN_EDGE_STEP grey levels
EDGE_QUANTILE = 0.99
MIN_EDGE_STEP = 2.0
# nor weaker than this share of the strongest 0.1 %: in a picture of a few objects over smooth
# shading the top 1 % reaches into the shading, whose gentle slopes are no edges
STRONGEST_QUANTILE = 0.999
STRONGEST_SHARE = 0.25
QUANTILE_BINS_PER_LEVEL = 4  # the step quantiles are read to a quarter of a grey level
MIN_EDGES = 20  # fewer strong edges than this: no width to speak of
# an edge ends where the difference falls under this share of its peak: a Gaussian blur of
# sigma s then reads ~4.3 s wide
EDGE_TAIL = 0.1
MAX_EDGE = 48  # widest edge measured, working pixels (a fifth of the picture's height)
LOGO_MARGIN = 2  # working pixels around a logo's box whose edges are the logo's too
# working pixels along each side whose edges are not measured: a crop keeps a line or two of
# its bars (the active picture's slack), whose crisp step would read as a sharp edge
EDGE_BORDER = 4


class Focus(NamedTuple):
    sharpness: float  # 0..1, higher is sharper
    contrast: float  # grey-level standard deviation of the working picture
    grey: np.ndarray  # the working picture: ``edge_width`` of a shot's sharpest keyframe


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


def focus(
    image: np.ndarray,
    grid: int = GRID,
    top: int = TOP_TILES,
    pixels: int = WORK_PIXELS,
    denoise: float = 0.0,
) -> Focus:
    """The sharpness and contrast of one keyframe, with the working picture they came from.
    ``denoise``: a Gaussian of that sigma (working pixels) over the working picture first, to
    study film grain (``benchmarks/curation/edge_width.py --denoise``); the filter uses 0."""
    grey = working_grey(image, pixels)
    if denoise:
        grey = cv2.GaussianBlur(grey, (0, 0), denoise)
    sharp, contrast = _sharpness(grey, grid, top)
    return Focus(sharp, contrast, grey)


def logo_in_working(
    logo: Sequence[int] | None, image_shape: Sequence[int], grey_shape: Sequence[int]
) -> tuple[int, int, int, int] | None:
    """A logo box [x0, y0, x1, y1] in keyframe pixels as ``edge_width``'s ``ignore`` box in the
    working picture's, ``LOGO_MARGIN`` wider on every side (None stays None)."""
    if logo is None:
        return None
    sy, sx = grey_shape[0] / image_shape[0], grey_shape[1] / image_shape[1]
    x0, y0, x1, y1 = logo
    return (
        max(0, math.floor(x0 * sx) - LOGO_MARGIN),
        max(0, math.floor(y0 * sy) - LOGO_MARGIN),
        math.ceil(x1 * sx) + LOGO_MARGIN,
        math.ceil(y1 * sy) + LOGO_MARGIN,
    )


def _sharpness(grey: np.ndarray, grid: int, top: int) -> tuple[float, float]:
    """(sharpness 0..1, contrast): ``1 -`` the Crété-Roffet blur of the picture's sharpest tiles
    (the mean of the ``top`` best of a ``grid`` x ``grid`` split, each tile taking the blurrier
    of its two directions), and the picture's grey-level standard deviation.

    Tiles, not the whole picture: a shallow-focus shot (a sharp subject over a soft background)
    is in focus where it matters; a defocused or blurred shot has no sharp tile at all.
    """
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


def edge_width(grey: np.ndarray, ignore: Sequence[int] | None = None) -> float | None:
    """Mean width, in pixels of ``grey``, of its strongest edges along rows and along columns
    (after Marziliano et al. 2002), leaving out edges inside ``ignore`` ([x0, y0, x1, y1] of
    ``grey``) and within ``EDGE_BORDER`` of the picture's sides. None when the picture has
    fewer than ``MIN_EDGES`` strong edges (a plain or black frame)."""
    h, w = grey.shape
    keep = np.zeros((h, w), bool)
    keep[EDGE_BORDER : h - EDGE_BORDER, EDGE_BORDER : w - EDGE_BORDER] = True
    if ignore is not None:
        x0, y0, x1, y1 = ignore
        keep[y0:y1, x0:x1] = False
    widths = [_run_widths(grey, keep), _run_widths(np.ascontiguousarray(grey.T), keep.T)]
    joined = np.concatenate(widths)
    if joined.size < MIN_EDGES:
        return None
    return float(joined.mean())


def _run_widths(grey: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Widths of the edges along the rows of ``grey``: from each strong peak of the neighbour
    difference, the run of same-signed differences on either side that stay at least
    ``EDGE_TAIL`` of the peak's (the edge's profile, without the gentle slope of a sky or a
    shaded wall it may sit on, which Marziliano's walk to the next extreme would add)."""
    diff = np.diff(grey, axis=1)
    step = np.abs(diff)
    # the thresholds from every other line and column: a quarter of the steps says the same
    kept = step[::2, ::2][keep[::2, 1::2]]
    if kept.size == 0:
        return np.zeros(0, np.int64)
    common, strongest = _quantiles(kept, (EDGE_QUANTILE, STRONGEST_QUANTILE))
    floor = max(common, STRONGEST_SHARE * strongest, MIN_EDGE_STEP)
    ys, xs = np.nonzero(step >= floor)  # a few per cent of the picture: checked one by one
    # a peak of the difference along the row, not a pixel on the flank of a stronger one
    here, last = step[ys, xs], step.shape[1] - 1
    peak = (here >= step[ys, np.maximum(xs - 1, 0)]) & (here >= step[ys, np.minimum(xs + 1, last)])
    peak &= keep[ys, xs + 1]
    ys, xs = ys[peak], xs[peak]
    signed = diff[ys, xs]
    sign, least = np.sign(signed), EDGE_TAIL * np.abs(signed)  # the edge's: same sign, >= least
    padded = np.pad(diff, ((0, 0), (MAX_EDGE, MAX_EDGE)))  # zeros end every run at the border
    width = np.ones(len(ys), np.int64)
    for direction in (-1, 1):
        going = np.ones(len(ys), bool)
        for k in range(1, MAX_EDGE + 1):
            d = padded[ys, xs + MAX_EDGE + direction * k]
            going &= d * sign >= least
            if not going.any():
                break
            width += going
    return width


def _quantiles(steps: np.ndarray, shares: tuple[float, ...]) -> list[float]:
    """Quantiles of grey-level steps (0..255) to a quarter of a level, from a histogram: a
    sort (``np.quantile``) cost half of the edge width's time for no threshold it would change."""
    bins = np.minimum(
        (steps * QUANTILE_BINS_PER_LEVEL).astype(np.int32), 256 * QUANTILE_BINS_PER_LEVEL
    )
    cumulative = np.cumsum(np.bincount(bins.ravel()))
    ranks = np.searchsorted(cumulative, [share * cumulative[-1] for share in shares])
    return [float(r) / QUANTILE_BINS_PER_LEVEL for r in ranks]


def _tile_sums(values: np.ndarray, grid: int, th: int, tw: int) -> np.ndarray:
    cut = values[: grid * th, : grid * tw]
    return cut.reshape(grid, th, grid, tw).sum(axis=(1, 3), dtype=np.float64)


class BlurVerdict(NamedTuple):
    rel: list[float]  # each shot's sharpness over the film's reference
    blurry: list[bool]
    reference: float | None  # the film's median sharpness of judged shots (None: none)
    edge_reference: float | None  # their median edge width (None: too few measured)


def judge_blur(
    shot_sharpness: Sequence[float],
    shot_edge_width: Sequence[float | None],
    judged: Sequence[bool],
    relative_threshold: float,
    min_edge_width: float | None,
    min_reference_shots: int,
    absolute_floor: float | None,
    min_edge_ratio: float | None = None,
) -> BlurVerdict:
    """Each shot's sharpness relative to its film, and which shots are blurry.

    The reference is the median sharpness of the ``judged`` shots (those with contrast, and not
    text cards): robust to a minority of blurred shots. A shot under ``relative_threshold`` of
    it is blurry when its edges have spread like a defocus's: at least ``min_edge_width``
    working pixels wide, and at least ``min_edge_ratio`` times the median edge width of the
    film's judged shots (a soft picture is less sharp than its film without its edges
    spreading that far; a film soft all over, an upscale or an old lens, has wide edges in
    every shot, and none is a defocus against the others). None switches either test off; a
    shot with no strong edge to measure is judged by sharpness. With fewer than
    ``min_reference_shots`` judged shots a median is no reference (two shots: which one is the
    soft one?): only ``absolute_floor`` (when set) can flag a shot; with fewer measured edge
    widths than that, the edges are held to ``min_edge_width`` alone.
    """
    ref_values = [s for s, ok in zip(shot_sharpness, judged, strict=True) if ok]
    reference = float(np.median(ref_values)) if ref_values else None
    measured = [w for w, ok in zip(shot_edge_width, judged, strict=True) if ok and w is not None]
    edge_reference = float(np.median(measured)) if len(measured) >= min_reference_shots else None
    rel = [s / reference if reference else 1.0 for s in shot_sharpness]
    blurry = []
    for s, r, width, ok in zip(shot_sharpness, rel, shot_edge_width, judged, strict=True):
        spread = edges_spread(width, min_edge_width, min_edge_ratio, edge_reference)
        relative = len(ref_values) >= min_reference_shots and r < relative_threshold and spread
        floor = absolute_floor is not None and s < absolute_floor
        blurry.append(ok and (relative or floor))
    return BlurVerdict(rel, blurry, reference, edge_reference)


def edges_spread(
    width: float | None,
    min_width: float | None,
    min_ratio: float | None,
    film_width: float | None,
) -> bool:
    """Whether a shot's edges are as wide as a defocus's (``judge_blur``)."""
    if width is None:  # no strong edge to measure: nothing shows the edges are narrow
        return True
    wide = min_width is None or width >= min_width
    wider_than_film = min_ratio is None or film_width is None or width >= min_ratio * film_width
    return wide and wider_than_film
