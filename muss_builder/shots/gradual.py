"""Name a gradual transition from its frames: fade through black/white, dissolve or wipe.

Works on the 48x27 thumbnails. ``A`` is the last clean frame before the interval and ``B``
the first clean frame after it.
- fade_black / fade_white: the darkest (brightest) frame inside is nearly uniform black
  (white), darker (brighter) than both A and B;
- dissolve: every frame is close to a blend ``(1 - a) A + a B`` and ``a`` rises from 0 to 1;
- wipe: every frame is A on one side of a straight edge and B on the other, the edge moving
  across: the per-pixel "closer to B" mask is a half plane whose area grows;
- anything else is "gradual" (the type is not claimed).
"""

from __future__ import annotations

import numpy as np

from muss_builder.shots.features import FrameFeatures
from muss_builder.shots.thresholds import MUSS_THRESHOLDS, GradualShapeThresholds
from muss_builder.shots.transitions import TransitionKind

_DEFAULT = MUSS_THRESHOLDS.gradual


def _fade_kind(
    features: FrameFeatures, start: int, end: int, th: GradualShapeThresholds
) -> TransitionKind | None:
    inside = range(features.local(start), features.local(end) + 1)
    before, after = features.local(start) - 1, features.local(end) + 1
    medians = [float(np.median(features.gray(features.first + i))) for i in inside]
    stds = [float(features.luma_std[i]) for i in inside]
    darkest, brightest = int(np.argmin(medians)), int(np.argmax(medians))
    edge = [float(np.median(features.gray(features.first + i))) for i in (before, after)]
    if (
        medians[darkest] < th.dark_luma
        and stds[darkest] < th.uniform_std
        and min(edge) > medians[darkest]
    ):
        return "fade_black"
    if (
        medians[brightest] > th.bright_luma
        and stds[brightest] < th.uniform_std
        and max(edge) < medians[brightest]
    ):
        return "fade_white"
    return None


def _is_dissolve(features: FrameFeatures, start: int, end: int, th: GradualShapeThresholds) -> bool:
    a, b = features.gray(start - 1), features.gray(end + 1)
    delta = (b - a).ravel()
    energy = float(delta @ delta)
    if energy < th.min_blend_energy:
        return False
    alphas, residuals = [], []
    for frame in range(start, end + 1):
        x = (features.gray(frame) - a).ravel()
        alpha = float(x @ delta) / energy
        residuals.append(float(((x - alpha * delta) ** 2).sum()) / energy)
        alphas.append(alpha)
    rising = np.diff(alphas)
    return (
        float(np.median(residuals)) < th.blend_residual
        and alphas[-1] - alphas[0] > th.dissolve_min_rise
        and float((rising >= -th.monotone_slack).mean()) > th.monotone_share
    )


def _is_wipe(features: FrameFeatures, start: int, end: int, th: GradualShapeThresholds) -> bool:
    a, b = features.gray(start - 1), features.gray(end + 1)
    differs = np.abs(b - a) > th.wipe_pixel_differs
    if differs.mean() < th.wipe_min_differing:
        return False
    areas, pure = [], []
    for frame in range(start, end + 1):
        f = features.gray(frame)
        closer_b = (np.abs(f - b) < np.abs(f - a)) & differs
        share = closer_b.sum() / max(1, differs.sum())
        areas.append(float(share))
        if th.wipe_mid_low < share < th.wipe_mid_high:  # mid-wipe frames show the edge
            cols = closer_b.sum(axis=0) / np.maximum(1, differs.sum(axis=0))
            rows = closer_b.sum(axis=1) / np.maximum(1, differs.sum(axis=1))
            pure_low, pure_high = th.wipe_line_pure, 1 - th.wipe_line_pure
            purity = max(
                float(((cols < pure_low) | (cols > pure_high)).mean()),
                float(((rows < pure_low) | (rows > pure_high)).mean()),
            )
            pure.append(purity)
    growing = (
        float((np.diff(areas) >= -th.monotone_slack).mean()) > th.monotone_share
        if len(areas) > 1
        else False
    )
    return bool(pure) and float(np.median(pure)) > th.wipe_purity and growing


def classify_gradual(
    features: FrameFeatures, start: int, end: int, th: GradualShapeThresholds = _DEFAULT
) -> TransitionKind:
    """The kind of the gradual transition [start, end] (frames inside ``features``)."""
    if features.local(start) < 1 or features.local(end) + 1 >= features.n:
        return "gradual"  # no clean frame on one side: do not guess
    fade = _fade_kind(features, start, end, th)
    if fade:
        return fade
    if _is_wipe(features, start, end, th):
        return "wipe"
    if _is_dissolve(features, start, end, th):
        return "dissolve"
    return "gradual"


def trim_by_progress(
    features: FrameFeatures, start: int, end: int, th: GradualShapeThresholds = _DEFAULT
) -> tuple[int, int]:
    """Shrink [start, end] to the frames that are really between A and B.

    Motion at the end of the old shot (or the start of the new one) also changes the picture
    every frame, so an interval found by "the picture keeps changing" can overshoot. Each
    frame's progress ``a`` (its projection on B - A: the blend weight of a dissolve, the
    uncovered share of a wipe) stays near 0 on A's side and near 1 on B's side.
    """
    a, b = features.gray(start - 1), features.gray(end + 1)
    delta = (b - a).ravel()
    energy = float(delta @ delta)
    if energy < th.min_blend_energy:
        return start, end
    progress = [
        float((features.gray(t) - a).ravel() @ delta) / energy for t in range(start, end + 1)
    ]
    inside = [i for i, p in enumerate(progress) if th.progress_low < p < th.progress_high]
    if not inside:
        return start, end
    return start + inside[0], start + inside[-1]
