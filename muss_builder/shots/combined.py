"""The default detector ("muss"): cheap candidates, typed gradual transitions, TransNetV2
where it can be afforded.

1. Candidates at high recall from cheap features of every frame: a hard-cut candidate is a
   frame whose colour or pixel change from the previous frame is a local peak well above the
   local median; a gradual candidate is a local peak of the colour change across 2L frames.
2. Flash suppression: a candidate after which the picture returns to what it was within
   ``max_flash_frames`` (a flash, a passing occluder) is no cut, and neither is the return.
3. Fades first: a candidate at the dark (bright) bottom of luma ramps is a fade through black
   (white), not a cut. Dissolves and wipes come from the gradual candidates: the interval
   where the picture keeps changing, which must settle on both sides, join two different
   pictures, hold no hard step, and fit a blend or a moving edge (``gradual.py``).
4. A clear cut (large change, far above its neighbours) is accepted. A doubtful one is asked
   of TransNetV2 when the net runs (every frame on a GPU; ``net_windows_per_minute`` windows
   on a CPU, 0 by default: see docs/design-notes.md); otherwise it is a cut when the change
   across it is a step, not a ramp, and touches at least ``min_changed_share`` of the picture.
5. Transitions closer than ``min_shot_seconds`` keep the stronger one; a cut inside a gradual
   interval belongs to it.
Cut frames come from the feature peak (the first frame that differs), so they are exact.
"""

from __future__ import annotations

import numpy as np

from muss_builder.config import MussDetectorConfig, TransNetConfig
from muss_builder.shots.detector import frames_at_rate
from muss_builder.shots.features import FeatureAccumulator, FrameFeatures, hist_distances
from muss_builder.shots.gradual import classify_gradual, trim_by_progress
from muss_builder.shots.transitions import Transition, cut
from muss_builder.shots.transnet import TransNetRunner

_MEDIAN_RADIUS = 12  # frames each side for the local median of frame changes
_GRADUAL_SPAN = 8  # L: gradual candidates compare frame t-L with t+L
_GRADUAL_FLOOR = 0.25
_MAX_FADE_HOLD = 12  # frames of black (white) a fade may hold between its two ramps


def changed_share(f: FrameFeatures, t: int, threshold: float = 0.08) -> float:
    """Share of the picture whose brightness changes from ``t - 1`` to ``t``: a cut changes
    most of it; a hand or a bird crossing the frame changes a part."""
    return float((np.abs(f.gray(t) - f.gray(t - 1)) > threshold).mean())


def local_median(values: np.ndarray, radius: int) -> np.ndarray:
    """Median of ``values`` over ``[t - radius, t + radius]`` without ``t`` itself."""
    padded = np.pad(values, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    without_centre = np.delete(windows, radius, axis=1)
    return np.median(without_centre, axis=1)


def is_local_peak(values: np.ndarray, radius: int) -> np.ndarray:
    padded = np.pad(values, radius, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    return values >= windows.max(axis=1)


class MussDetector:
    name = "muss"

    def __init__(
        self,
        cfg: MussDetectorConfig,
        net: TransNetConfig,
        min_shot_frames: int,
        fps: float,
    ) -> None:
        self.fps = fps
        self.cfg = cfg
        self.min_shot_frames = min_shot_frames
        # a cut is the largest change within two frames each side (1/12 s at 24 fps); at a
        # few frames per second two frames are most of a second, where real cuts can follow
        # each other, so there one frame each side keeps them apart
        self.peak_radius = 2 if fps >= 8 else 1
        # a flash is short in time: max_flash_frames counts frames at 24 fps (1/6 s); at a
        # low rate the same frames would span seconds and swallow a real shot between two
        # alike (A B A); never more frames than configured
        self.flash_frames = frames_at_rate(cfg.max_flash_frames, fps)
        self.runner = TransNetRunner(net.device, net.batch_windows)
        self.full_pass = cfg.full_transnet == "always" or (
            cfg.full_transnet == "auto" and self.runner.device == "cuda"
        )
        self.accumulator = FeatureAccumulator()
        self.features: FrameFeatures | None = None

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        self.accumulator.process_frame(index, frame)

    # ------------------------------------------------------------------ candidates
    def _cut_candidates(self, f: FrameFeatures) -> list[int]:
        score = np.maximum(f.hist_diff, f.pixel_diff)
        med = local_median(score, _MEDIAN_RADIUS)
        keep = (
            (score > self.cfg.cut_candidate_floor)
            & (score > self.cfg.cut_candidate_ratio * med + 0.01)
            & is_local_peak(score, self.peak_radius)
        )
        keep[0] = False  # the first frame of a range has no previous frame to compare
        return [f.first + int(i) for i in np.nonzero(keep)[0]]

    def _is_flash(self, f: FrameFeatures, t: int) -> bool:
        """The picture before ``t`` comes back within a few frames (or ``t`` ends such a blip)."""
        score = max(f.hist_diff[f.local(t)], f.pixel_diff[f.local(t)])
        for k in range(1, self.flash_frames + 1):
            for before, after in ((t - 1, t + k), (t - 1 - k, t)):
                if f.local(before) < 0 or f.local(after) >= f.n:
                    continue
                back = max(f.hist_between(before, after), f.pixel_between(before, after))
                if back < 0.35 * score:
                    return True
        return False

    def _gradual_candidates(self, f: FrameFeatures) -> list[int]:
        span = _GRADUAL_SPAN
        if f.n <= 2 * span:
            return []
        far = np.zeros(f.n, np.float32)
        far[span:-span] = hist_distances(f.hists[2 * span :], f.hists[: -2 * span])
        keep = (far > _GRADUAL_FLOOR) & is_local_peak(far, span)
        return [f.first + int(i) for i in np.nonzero(keep)[0]]

    # ------------------------------------------------------------------ decisions
    def _probabilities(
        self, f: FrameFeatures, centres: list[int]
    ) -> dict[int, tuple[float, float]]:
        if self.full_pass:
            pred = self.runner.predict_all(f.thumbs, f.first)
            return {
                f.first + i: (float(s), float(m))
                for i, (s, m) in enumerate(zip(pred.single, pred.many, strict=True))
            }
        return self.runner.predict_around(f.thumbs, f.first, centres) if centres else {}

    def _transition_run(
        self, probs: dict[int, tuple[float, float]], centre: int, threshold: float
    ) -> tuple[int, int] | None:
        """The contiguous frames around ``centre`` that the net calls transition frames."""

        # the single-frame head marks the frames of a transition; the many-hot head is
        # smoother and wider, so runs follow the single head
        def hot(frame: int) -> bool:
            p = probs.get(frame)
            return p is not None and p[0] >= threshold

        seeds = [c for c in range(centre - _GRADUAL_SPAN, centre + _GRADUAL_SPAN + 1) if hot(c)]
        if not seeds:
            return None
        seed = min(seeds, key=lambda c: abs(c - centre))
        start = end = seed
        while hot(start - 1) and end - start < self.cfg.max_gradual_frames:
            start -= 1
        while hot(end + 1) and end - start < self.cfg.max_gradual_frames:
            end += 1
        return start, end

    def _is_clear_cut(self, f: FrameFeatures, t: int, median: np.ndarray) -> bool:
        """A large change that stands far above its neighbours needs no second opinion."""
        score = float(max(f.hist_diff[f.local(t)], f.pixel_diff[f.local(t)]))
        spike = score / (float(median[f.local(t)]) + 0.01)
        return score >= self.cfg.cut_accept_without_net and spike >= self.cfg.clear_cut_spike

    def _step_ratio(self, f: FrameFeatures, t: int) -> float:
        """Change across ``t`` over the largest change beside it: high for a cut (a step),
        near 1 for motion (a ramp). Two frames each side, because footage converted to a
        higher frame rate repeats frames and a single neighbour can be a repeat."""
        if f.local(t) < 3 or f.local(t) + 2 >= f.n:
            return 0.0

        def change(a: int, b: int) -> float:
            return f.pixel_between(a, b) + f.hist_between(a, b)

        beside = max(
            change(t - 3, t - 2), change(t - 2, t - 1), change(t, t + 1), change(t + 1, t + 2)
        )
        return change(t - 1, t) / (beside + 0.005)

    def _feature_gradual(self, f: FrameFeatures, centre: int, steps: set[int]) -> Transition | None:
        """A gradual transition found and typed from features alone, or None.

        The interval is where the picture keeps changing around ``centre``; it must settle on
        both sides, join two different pictures, hold no hard step (``steps``: clear cuts),
        and look like a dissolve or a wipe from its frames.
        """
        if f.local(centre) < 2 or f.local(centre) + 2 >= f.n:
            return None
        start, end = self._feature_interval(f, centre, "dissolve")
        length = end - start + 1
        if not self.cfg.min_gradual_frames <= length < self.cfg.max_gradual_frames - 1:
            return None  # too short, or it never stopped changing: camera motion
        if f.local(start) < 1 or f.local(end) + 2 >= f.n:
            return None
        if any(start <= t <= end + 1 for t in steps):
            return None  # a dissolve changes a little every frame; this holds a hard step
        if not self._settles(f, start, end) or not self._shots_differ(f, start, end):
            return None
        start, end = trim_by_progress(f, start, end)
        if end - start + 1 < self.cfg.min_gradual_frames:
            return None
        kind = classify_gradual(f, start, end)
        return None if kind == "gradual" else Transition(start, end, kind, 0.5)

    @staticmethod
    def _shots_differ(f: FrameFeatures, start: int, end: int) -> bool:
        before, after = max(f.first, start - 1), min(f.first + f.n - 1, end + 1)
        return f.hist_between(before, after) > 0.12 or f.pixel_between(before, after) > 0.12

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
        return outside < 0.6 * inside

    def _fade_near(self, f: FrameFeatures, t: int) -> Transition | None:
        """A fade through black or white whose darkest/brightest frame is near ``t``."""
        lo, hi = max(0, f.local(t) - 4), min(f.n, f.local(t) + 4)
        span = self.cfg.max_gradual_frames // 2  # slow fades take a while to recover
        for kind, sign, limit in (("fade_black", 1.0, 0.12), ("fade_white", -1.0, -0.88)):
            luma = sign * f.luma
            extreme = lo + int(np.argmin(luma[lo:hi]))
            if luma[extreme] > limit or f.luma_std[extreme] > 0.08:
                continue
            before = luma[max(0, extreme - span) : extreme]
            after = luma[extreme + 1 : extreme + 1 + span]
            if (
                len(before)
                and len(after)
                and before.max() > luma[extreme] + 0.08
                and (after.max() > luma[extreme] + 0.08)
            ):
                start, end = self._feature_interval(f, f.first + extreme, kind)
                inside = luma[f.local(start) : f.local(end) + 1]
                plateau = int((inside <= luma[extreme] + 0.01).sum())
                # a fade ramps; a black (white) shot between two cuts does not
                ramps = len(inside) - plateau
                if (
                    end - start + 1 >= self.cfg.min_gradual_frames
                    and ramps >= 2
                    and plateau <= self.cfg.max_gradual_frames // 2
                    and self._shots_differ(f, start, end)
                ):
                    return Transition(start, end, kind, 0.6)
        return None

    def _feature_interval(self, f: FrameFeatures, centre: int, kind: str) -> tuple[int, int]:
        """Frames of the transition around ``centre``: where the picture keeps changing (for a
        fade: where the luma keeps falling towards / rising from the black or white)."""
        limit = self.cfg.max_gradual_frames // 2
        lo, hi = max(1, f.local(centre) - limit), min(f.n - 1, f.local(centre) + limit)
        if kind in ("fade_black", "fade_white"):
            sign = 1.0 if kind == "fade_black" else -1.0
            luma = sign * f.luma
            extreme = lo + int(np.argmin(luma[lo : hi + 1]))
            # walk over the black (white) plateau, then along the ramps on either side
            first_dark, last_dark = extreme, extreme
            while first_dark > lo and luma[first_dark - 1] <= luma[extreme] + 0.01:
                first_dark -= 1
            while last_dark < hi and luma[last_dark + 1] <= luma[extreme] + 0.01:
                last_dark += 1
            start, end = first_dark, last_dark
            while start > lo and luma[start - 1] > luma[start] + 0.002:
                start -= 1
            while end < hi and luma[end + 1] > luma[end] + 0.002:
                end += 1
            # the ramps stop on the first frame at the shot's own level: not part of the fade
            start = start + 1 if start < first_dark else start
            end = end - 1 if end > last_dark else end
            # a long black (white) stretch entered or left by a cut is a shot of its own:
            # the fade is only the ramp on the other side
            if last_dark - first_dark + 1 > _MAX_FADE_HOLD:
                if first_dark - start < 2:
                    start = last_dark + 1
                if end - last_dark < 2:
                    end = first_dark - 1
            return f.first + start, f.first + max(start, end)
        c = f.local(centre)
        level = float(np.median(f.pixel_diff[max(1, c - 2) : c + 3]))
        changing = f.pixel_diff >= 0.5 * level
        # a wipe's edge or a dissolve's curve can slow for a frame: bridge one-frame gaps
        start = c
        while start > lo and (changing[start - 1] or (start > lo + 1 and changing[start - 2])):
            start -= 1
        end = c
        while end < hi and (changing[end + 1] or (end + 2 <= hi and changing[end + 2])):
            end += 1
        # pixel_diff[t] compares t with t-1: the mixed frames are start .. end-1
        return f.first + start, f.first + max(start, end - 1)

    def finish(self) -> list[Transition]:
        f = self.features = self.accumulator.features()
        median = local_median(np.maximum(f.hist_diff, f.pixel_diff), _MEDIAN_RADIUS)
        found: list[Transition] = []
        candidates = []
        # a fade's darkest (brightest) frames change fast and look like a cut: fades first
        for t in self._cut_candidates(f):
            if self._is_flash(f, t):
                continue
            fade = self._fade_near(f, t)
            if fade is not None and fade.start_frame - 1 <= t <= fade.end_frame + 1:
                found.append(fade)
            else:
                candidates.append(t)
        clear = {t for t in candidates if self._is_clear_cut(f, t, median)}
        found += [cut(t, 1.0) for t in sorted(clear)]
        # a cut that also jumps in pixels (not just in colour) is a step no dissolve contains
        steps = {
            t
            for t in candidates
            if f.pixel_diff[f.local(t)] > 0.08
            and (t in clear or self._step_ratio(f, t) >= self.cfg.step_ratio)
        }
        untyped = []
        for centre in self._gradual_candidates(f):
            typed = self._fade_near(f, centre) or self._feature_gradual(f, centre, steps)
            if typed is not None:
                found.append(typed)
            elif not any(abs(centre - t) <= _GRADUAL_SPAN + 2 for t in clear):
                # (a hard cut also makes the change across 2L frames peak)
                untyped.append(centre)
        unsure = [t for t in candidates if t not in clear]
        # The net is slow on a CPU: it sees the most doubtful candidates, within a budget.
        asks = self._net_questions(f, unsure, untyped)
        probs = self._probabilities(f, asks)
        self.net_windows = self.runner.windows_run
        for t in unsure:
            if t in asks:
                net = max(probs.get(k, (0.0, 0.0))[0] for k in range(t - 2, t + 2))
                if net >= self.cfg.cut_confirm:
                    found.append(cut(t, round(net, 4)))
            elif (
                self._step_ratio(f, t) >= self.cfg.step_ratio
                and changed_share(f, t) >= self.cfg.min_changed_share
            ):
                found.append(cut(t, 0.5))
        for centre in untyped:
            if centre not in asks:
                continue
            run = self._transition_run(probs, centre, self.cfg.gradual_confirm)
            if run is None or run[1] - run[0] + 1 < self.cfg.min_gradual_frames:
                continue
            start, end = run
            kind = classify_gradual(f, start, end)
            peak = max(max(probs.get(k, (0.0, 0.0))) for k in range(start, end + 1))
            found.append(Transition(start, end, kind, round(peak, 4)))
        return resolve_overlaps(found, self.min_shot_frames)

    def _net_questions(self, f: FrameFeatures, unsure: list[int], untyped: list[int]) -> set:
        """Candidates the net will look at: all on a GPU, else the budget's worth, untyped
        gradual candidates first, then cut candidates whose step ratio is closest to the rule."""
        if self.full_pass:
            return set(unsure) | set(untyped)
        minutes = f.n / max(1e-6, self.fps) / 60.0
        budget = round(self.cfg.net_windows_per_minute * minutes)
        ranked = list(untyped) + sorted(
            unsure,
            key=lambda t: abs(np.log(self._step_ratio(f, t) + 1e-6) - np.log(self.cfg.step_ratio)),
        )
        return set(ranked[:budget])


def resolve_overlaps(found: list[Transition], min_shot_frames: int) -> list[Transition]:
    """Drop duplicates: a cut inside a gradual interval, and the weaker of two close ones."""
    graduals = sorted({t for t in found if not t.is_cut})
    kept: list[Transition] = []
    for g in graduals:  # overlapping gradual runs (two candidates, one transition) merge
        if kept and g.start_frame <= kept[-1].end_frame + 1:
            last = kept.pop()
            # two findings of one transition: keep the more confident one's reading
            g = max(last, g, key=lambda t: (t.confidence, t.end_frame - t.start_frame))
        kept.append(g)
    cuts = [
        c
        for c in sorted(t for t in found if t.is_cut)
        if not any(g.start_frame - 1 <= c.start_frame <= g.end_frame + 1 for g in kept)
    ]
    result: list[Transition] = []
    for t in sorted(kept + cuts, key=lambda t: t.boundary):
        if result and t.boundary - result[-1].boundary < min_shot_frames:
            if t.confidence > result[-1].confidence:
                result[-1] = t
            continue
        result.append(t)
    return result
