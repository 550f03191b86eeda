"""Camera motion of a shot, measured from a few decoded frames (no model involved).

Part of the measured shot facts (``facts.py`` says why they are measured, not asked).

    Between each pair of consecutive frames the global image motion is fitted as a similarity
    transform (translation, uniform scale, roll):

    1. phase correlation of the two grey frames gives the dominant translation even when it
       is a large part of the frame (a fast pan sampled every half second moves content by
       tens of pixels, beyond what Lucas-Kanade converges from on its own);
    2. good features to track (Shi-Tomasi corners) in the first frame are followed into the
       second by pyramidal Lucas-Kanade, started at that translation, and kept only when
       tracking them back lands within a pixel of where they began;
    3. ``cv2.estimateAffinePartial2D`` fits the similarity with RANSAC, so a subject walking
       across a static background is an outlier, not a pan, as long as the background holds
       most of the tracked corners.

    Why this and not phase correlation plus a log-polar transform for scale: log-polar
    registration needs the translation removed first and is fragile at 192 px, while a
    similarity fitted to tracked points gives translation and scale together, with RANSAC's
    robustness to moving subjects. Why a similarity and not a homography: between nearby
    frames of one shot, perspective change is small, and four parameters fit stably from the
    few dozen corners a small frame has.

    Sign convention: the fitted motion is of the image CONTENT; the camera moves the other
    way (pan right => content moves left), so translations are negated. Zoom is the content's
    scale: content that grows is a zoom in (or a dolly in; the two are not told apart).

    The motion of the frame centre per pair is summed into rates (fractions of the frame per
    second) and classified: ``handheld`` when the camera path is long but wanders (its net
    displacement is under half the summed path length and its positions scatter around the
    straight line by at least ``handheld_jitter`` of the width); else ``static`` when every
    rate is under ``static_below``; else ``zoom_*`` when the zoom moves the frame edges faster
    than the pan or tilt moves the content, else ``pan_*`` or ``tilt_*`` by the faster axis in
    pixels. A pair whose fit fails (flat frames, too few corners, no consensus) is left out;
    when none succeeds the shot reads as static with magnitude 0, since no evidence of motion
    is the best available answer and captioning must not stop on a featureless shot.

"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import pairwise

import cv2
import numpy as np

CAMERA_KINDS = (
    "static",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "zoom_in",
    "zoom_out",
    "handheld",
)

# Frames wider than this are shrunk first: the pixel tolerances below (1 px, 1.5 px) suit
# frames of 192-256 px, and a larger frame only costs time (rates are fractions of the frame,
# so the size does not change them).
WORK_WIDTH = 256
_MAX_CORNERS = 400
_MIN_POINTS = 8  # fewer tracked corners than this cannot outvote noise in RANSAC
# RANSAC's consensus must hold this share of all the corners found, not just of those that
# survived tracking: between unrelated frames (noise, a flash) a few corners always track by
# chance and agree among themselves, but they are a small share (about 5 %) of those found,
# while a real background keeps most (over 80 % in the tests; about half when a fast pan
# takes half the frame out of view or a subject covers much of it)
_MIN_INLIER_FRACTION = 0.2
_FB_MAX_ERROR = 1.0  # px: forward-backward tracking disagreement that drops a corner
_RANSAC_PX = 1.5  # px: reprojection error under which a corner agrees with the fit
_MIN_PHASE_RESPONSE = 0.05  # below this the phase-correlation peak is noise: no prior
_LK = {
    "winSize": (21, 21),
    "maxLevel": 3,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
}


@dataclass(frozen=True)
class CameraMotion:
    kind: str  # one of CAMERA_KINDS
    # pan: fraction of the frame width crossed per second; tilt: of the height; zoom: relative
    # scale change per second (0.1 = 10 %/s); handheld: jitter (std of the camera position
    # around its straight path, fraction of the width); static: the largest residual rate
    magnitude: float
    dx_per_second: float  # camera motion, fraction of width per second: positive = pans right
    dy_per_second: float  # fraction of height per second: positive = tilts down
    zoom_per_second: float  # relative scale change per second: positive = zoom in

    def to_dict(self) -> dict:
        # rounded for JSON and prompts: four decimals is finer than the measurement
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class _Step:
    """Camera motion between two consecutive frames, from one similarity fit."""

    dt: float  # seconds
    dx: float  # camera x displacement, fraction of width
    dy: float  # camera y displacement, fraction of height
    dy_w: float  # the same, in widths (isotropic units for path length and jitter)
    log_scale: float  # log of the content's scale change (positive = zoom in)


STATIC = CameraMotion("static", 0.0, 0.0, 0.0, 0.0)


def _grey(frame: np.ndarray) -> np.ndarray:
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape
    if width > WORK_WIDTH:
        size = (WORK_WIDTH, max(2, round(height * WORK_WIDTH / width)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def _check_frames(frames: list[np.ndarray], times: list[float]) -> None:
    if len(frames) != len(times):
        raise ValueError(f"{len(frames)} frames but {len(times)} times")
    shapes = {f.shape[:2] for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames of different sizes: {sorted(shapes)}")
    if any(b <= a for a, b in pairwise(times)):
        raise ValueError("times must increase strictly")


def _phase_prior(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Dominant content translation a -> b in pixels, or (0, 0) when the peak is noise."""
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), window)
    if not (math.isfinite(dx) and math.isfinite(dy)) or response < _MIN_PHASE_RESPONSE:
        return 0.0, 0.0
    return dx, dy


def _fit_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """2x3 similarity mapping content of ``a`` onto ``b``, or None when it cannot be trusted."""
    corners = cv2.goodFeaturesToTrack(
        a, maxCorners=_MAX_CORNERS, qualityLevel=0.01, minDistance=4, blockSize=7
    )
    if corners is None or len(corners) < _MIN_POINTS:
        return None
    corners = corners.astype(np.float32)
    prior = np.array(_phase_prior(a, b), np.float32)
    guess = corners + prior
    moved, ok, _ = cv2.calcOpticalFlowPyrLK(
        a, b, corners, guess, flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK
    )
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(
        b, a, moved, corners.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK
    )
    # a corner is kept only if tracking it back returns it home: occlusions, corners on
    # flat patches and the aperture problem all fail this
    error = np.linalg.norm((back - corners).reshape(-1, 2), axis=1)
    keep = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (error < _FB_MAX_ERROR)
    if keep.sum() < _MIN_POINTS:
        return None
    src, dst = corners.reshape(-1, 2)[keep], moved.reshape(-1, 2)[keep]
    matrix, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=_RANSAC_PX, maxIters=2000
    )
    if matrix is None or inliers is None:
        return None
    n_in = int(inliers.sum())
    if n_in < _MIN_POINTS or n_in < _MIN_INLIER_FRACTION * len(corners):
        return None
    if not np.all(np.isfinite(matrix)):
        return None
    return matrix


def _step(a: np.ndarray, b: np.ndarray, dt: float) -> _Step | None:
    matrix = _fit_similarity(a, b)
    if matrix is None:
        return None
    height, width = a.shape
    # motion of the frame centre: the similarity's own translation is about the pixel origin
    # (top-left), where a pure zoom would look like a pan
    centre = np.array([(width - 1) / 2, (height - 1) / 2, 1.0])
    moved = matrix @ centre
    content_dx, content_dy = moved[0] - centre[0], moved[1] - centre[1]
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    if scale <= 0:
        return None
    # the camera moves against the content
    return _Step(
        dt=dt,
        dx=-content_dx / width,
        dy=-content_dy / height,
        dy_w=-content_dy / width,
        log_scale=math.log(scale),
    )


def _jitter(steps: list[_Step], vx: float, vy: float) -> float:
    """Std of the camera path around its straight-line trend, in frame widths.

    Each step's displacement less the trend's is accumulated into positions; their scatter
    is how far the camera wandered off a steady move, whatever the sampling rate.
    """
    rx = np.array([s.dx - vx * s.dt for s in steps])
    ry = np.array([s.dy_w - vy * s.dt for s in steps])
    px = np.concatenate([[0.0], np.cumsum(rx)])
    py = np.concatenate([[0.0], np.cumsum(ry)])
    return float(np.sqrt(np.mean((px - px.mean()) ** 2 + (py - py.mean()) ** 2)))


def _classify(
    dx: float,
    dy: float,
    zoom: float,
    dy_w: float,
    jitter: float,
    straightness: float,
    *,
    static_below: float,
    handheld_jitter: float,
    handheld_straightness: float,
) -> tuple[str, float]:
    if jitter >= handheld_jitter and straightness < handheld_straightness:
        return "handheld", jitter
    moving = {
        # speeds compared in frame widths per second, i.e. in pixels: a zoom's is that of the
        # frame edge, half a width from the centre
        "pan": abs(dx) if abs(dx) >= static_below else 0.0,
        "tilt": abs(dy_w) if abs(dy) >= static_below else 0.0,
        "zoom": abs(zoom) / 2 if abs(zoom) >= static_below else 0.0,
    }
    axis = max(moving, key=lambda k: moving[k])
    if moving[axis] == 0.0:
        return "static", max(abs(dx), abs(dy), abs(zoom))
    if axis == "zoom":
        return ("zoom_in" if zoom > 0 else "zoom_out"), abs(zoom)
    if axis == "pan":
        return ("pan_right" if dx > 0 else "pan_left"), abs(dx)
    return ("tilt_down" if dy > 0 else "tilt_up"), abs(dy)


def camera_motion(
    frames: list[np.ndarray],
    times: list[float],
    *,
    static_below: float = 0.02,
    handheld_jitter: float = 0.008,
    handheld_straightness: float = 0.5,
) -> CameraMotion:
    """Camera motion over a few evenly spaced frames of ONE shot (``times`` in seconds).

    ``static_below``: rates under this (fraction of the frame, or relative scale, per second)
    are no motion: 0.02/s is 4 % of the frame over a two-second shot, a drift no viewer calls
    a move. ``handheld_jitter``: the least scatter of the camera around its trend (fraction of
    the width; 0.008 is about 1.5 px at 192 px, ten times what a steady pan through a codec
    shows, 0.0007) that, with a net displacement under ``handheld_straightness`` of the path
    length, reads as handheld.
    Fewer than two frames, or no pair that fits: static with magnitude 0. Frames of different
    sizes, or times that do not increase: ValueError.
    """
    _check_frames(frames, times)
    if len(frames) < 2:
        return STATIC
    greys = [_grey(f) for f in frames]
    steps = [
        step
        for (a, b), (t0, t1) in zip(pairwise(greys), pairwise(times), strict=True)
        if (step := _step(a, b, float(t1) - float(t0))) is not None
    ]
    if not steps:
        return STATIC
    span = sum(s.dt for s in steps)
    dx = sum(s.dx for s in steps) / span
    dy = sum(s.dy for s in steps) / span
    dy_w = sum(s.dy_w for s in steps) / span
    # compounded: exp(rate) - 1 is the scale change after one second, as "10 %/s" reads
    zoom = math.expm1(sum(s.log_scale for s in steps) / span)
    path = sum(math.hypot(s.dx, s.dy_w) for s in steps)
    net = math.hypot(dx, dy_w) * span
    straightness = net / path if path > 0 else 1.0
    jitter = _jitter(steps, dx, dy_w) if len(steps) > 1 else 0.0
    kind, magnitude = _classify(
        dx,
        dy,
        zoom,
        dy_w,
        jitter,
        straightness,
        static_below=static_below,
        handheld_jitter=handheld_jitter,
        handheld_straightness=handheld_straightness,
    )
    return CameraMotion(kind, float(magnitude), float(dx), float(dy), float(zoom))
