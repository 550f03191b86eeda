"""Gradual transitions found and typed from features alone, without the net.

A fade through black (white) is found from the luma: a nearly uniform dark (bright) bottom
between two ramps. A dissolve or a wipe is the interval where the picture keeps changing
around a gradual candidate; it must settle on both sides, join two different pictures, hold
no hard step, and fit a blend or a moving edge (``gradual.py`` names it).
"""

from __future__ import annotations

import numpy as np

from muss_builder.config import MussDetectorConfig
from muss_builder.shots.features import FrameFeatures
from muss_builder.shots.gradual import classify_gradual, trim_by_progress
from muss_builder.shots.thresholds import MussThresholds
from muss_builder.shots.transitions import Transition, TransitionKind


class FeatureGradualFinder:
    """Fades, dissolves and wipes around a candidate frame, from ``FrameFeatures``."""

    def __init__(self, cfg: MussDetectorConfig, thresholds: MussThresholds) -> None:
        self.cfg = cfg
        self.th = thresholds

    def feature_gradual(self, f: FrameFeatures, centre: int, steps: set[int]) -> Transition | None:
        """A gradual transition found and typed from features alone, or None.

        The interval is where the picture keeps changing around ``centre``; it must settle on
        both sides, join two different pictures, hold no hard step (``steps``: clear cuts),
        and look like a dissolve or a wipe from its frames.
        """
        if f.local(centre) < 2 or f.local(centre) + 2 >= f.n:
            return None
        start, end = self._interval(f, centre, "dissolve")
        length = end - start + 1
        if not self.cfg.min_gradual_frames <= length < self.cfg.max_gradual_frames - 1:
            return None  # too short, or it never stopped changing: camera motion
        if f.local(start) < 1 or f.local(end) + 2 >= f.n:
            return None
        if any(start <= t <= end + 1 for t in steps):
            return None  # a dissolve changes a little every frame; this holds a hard step
        if not self._settles(f, start, end) or not self._shots_differ(f, start, end):
            return None
        start, end = trim_by_progress(f, start, end, self.th.gradual)
        if end - start + 1 < self.cfg.min_gradual_frames:
            return None
        kind = classify_gradual(f, start, end, self.th.gradual)
        if kind == "gradual":
            return None
        return Transition(start, end, kind, self.th.feature_gradual_confidence)

    def _shots_differ(self, f: FrameFeatures, start: int, end: int) -> bool:
        before, after = max(f.first, start - 1), min(f.first + f.n - 1, end + 1)
        differ = self.th.shots_differ
        return f.hist_between(before, after) > differ or f.pixel_between(before, after) > differ

    def _settles(self, f: FrameFeatures, start: int, end: int) -> bool:
        """The picture is calmer just outside the interval than inside it (a transition
        between two shots, not a stretch of motion)."""
        inside = float(np.median(f.pixel_diff[f.local(start) : f.local(end) + 2]))
        before = f.pixel_diff[max(1, f.local(start) - 2) : f.local(start)]
        after = f.pixel_diff[f.local(end) + 2 : f.local(end) + 4]
        outside = (
            float(np.median(np.concatenate([before, after])))
            if len(before) + len(after)
            else inside
        )
        return outside < self.th.settle_ratio * inside

    def fade_near(self, f: FrameFeatures, t: int) -> Transition | None:
        """A fade through black or white whose darkest/brightest frame is near ``t``."""
        th = self.th
        lo, hi = max(0, f.local(t) - th.fade_search), min(f.n, f.local(t) + th.fade_search)
        span = self.cfg.max_gradual_frames // 2  # slow fades take a while to recover
        fades: tuple[tuple[TransitionKind, float, float], ...] = (
            ("fade_black", 1.0, th.fade_black_luma),
            ("fade_white", -1.0, -th.fade_white_luma),
        )
        for kind, sign, limit in fades:
            luma = sign * f.luma
            extreme = lo + int(np.argmin(luma[lo:hi]))
            if luma[extreme] > limit or f.luma_std[extreme] > th.fade_uniform_std:
                continue
            before = luma[max(0, extreme - span) : extreme]
            after = luma[extreme + 1 : extreme + 1 + span]
            if (
                len(before)
                and len(after)
                and before.max() > luma[extreme] + th.fade_depth
                and (after.max() > luma[extreme] + th.fade_depth)
            ):
                start, end = self._interval(f, f.first + extreme, kind)
                inside = luma[f.local(start) : f.local(end) + 1]
                plateau = int((inside <= luma[extreme] + th.fade_plateau).sum())
                # a fade ramps; a black (white) shot between two cuts does not
                ramps = len(inside) - plateau
                if (
                    end - start + 1 >= self.cfg.min_gradual_frames
                    and ramps >= 2
                    and plateau <= self.cfg.max_gradual_frames // 2
                    and self._shots_differ(f, start, end)
                ):
                    return Transition(start, end, kind, th.fade_confidence)
        return None

    def _interval(self, f: FrameFeatures, centre: int, kind: TransitionKind) -> tuple[int, int]:
        """Frames of the transition around ``centre``: where the picture keeps changing (for a
        fade: where the luma keeps falling towards / rising from the black or white)."""
        limit = self.cfg.max_gradual_frames // 2
        lo, hi = max(1, f.local(centre) - limit), min(f.n - 1, f.local(centre) + limit)
        th = self.th
        if kind in ("fade_black", "fade_white"):
            sign = 1.0 if kind == "fade_black" else -1.0
            luma = sign * f.luma
            extreme = lo + int(np.argmin(luma[lo : hi + 1]))
            # walk over the black (white) plateau, then along the ramps on either side
            first_dark, last_dark = extreme, extreme
            while first_dark > lo and luma[first_dark - 1] <= luma[extreme] + th.fade_plateau:
                first_dark -= 1
            while last_dark < hi and luma[last_dark + 1] <= luma[extreme] + th.fade_plateau:
                last_dark += 1
            start, end = first_dark, last_dark
            while start > lo and luma[start - 1] > luma[start] + th.fade_slope:
                start -= 1
            while end < hi and luma[end + 1] > luma[end] + th.fade_slope:
                end += 1
            # the ramps stop on the first frame at the shot's own level: not part of the fade
            start = start + 1 if start < first_dark else start
            end = end - 1 if end > last_dark else end
            # a long black (white) stretch entered or left by a cut is a shot of its own:
            # the fade is only the ramp on the other side
            if last_dark - first_dark + 1 > th.max_fade_hold:
                if first_dark - start < 2:
                    start = last_dark + 1
                if end - last_dark < 2:
                    end = first_dark - 1
            return f.first + start, f.first + max(start, end)
        c = f.local(centre)
        level = float(np.median(f.pixel_diff[max(1, c - 2) : c + 3]))
        changing = f.pixel_diff >= th.changing_share * level
        # a wipe's edge or a dissolve's curve can slow for a frame: bridge one-frame gaps
        start = c
        while start > lo and (changing[start - 1] or (start > lo + 1 and changing[start - 2])):
            start -= 1
        end = c
        while end < hi and (changing[end + 1] or (end + 2 <= hi and changing[end + 2])):
            end += 1
        # pixel_diff[t] compares t with t-1: the mixed frames are start .. end-1
        return f.first + start, f.first + max(start, end - 1)
