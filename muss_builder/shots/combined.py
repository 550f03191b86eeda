"""The default detector ("muss"): cheap candidates, TransNetV2 confirmation, typed gradual.

1. Candidates at high recall from cheap features of every frame: a hard-cut candidate is a
   frame whose colour or pixel change from the previous frame is a local peak well above the
   local median; a gradual candidate is a local peak of the change across 2L frames.
2. Flash suppression: a candidate after which the picture returns to what it was within
   ``max_flash_frames`` (a flash, a passing occluder) is no cut, and neither is the return.
3. TransNetV2 looks only at 100-frame windows around the remaining candidates on a CPU (on
   every frame on a GPU) and confirms cuts; a run of transition frames at least
   ``min_gradual_frames`` long is a gradual transition, typed by ``gradual.classify_gradual``.
4. Transitions closer than ``min_shot_frames`` keep the stronger one; a cut inside a gradual
   interval belongs to it.
Cut frames come from the feature peak (the first frame that differs), so they are exact.
"""

from __future__ import annotations

import numpy as np

from muss_builder.config import MussDetectorConfig, TransNetConfig
from muss_builder.shots.features import FeatureAccumulator, FrameFeatures
from muss_builder.shots.gradual import classify_gradual
from muss_builder.shots.transitions import Transition, cut
from muss_builder.shots.transnet import TransNetRunner

_MEDIAN_RADIUS = 12  # frames each side for the local median of frame changes
_GRADUAL_SPAN = 8  # L: gradual candidates compare frame t-L with t+L
_GRADUAL_FLOOR = 0.25


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
    ) -> None:
        self.cfg = cfg
        self.min_shot_frames = min_shot_frames
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
            & is_local_peak(score, 2)
        )
        keep[0] = False  # the first frame of a range has no previous frame to compare
        return [f.first + int(i) for i in np.nonzero(keep)[0]]

    def _is_flash(self, f: FrameFeatures, t: int) -> bool:
        """The picture before ``t`` comes back within a few frames (or ``t`` ends such a blip)."""
        score = max(f.hist_diff[f.local(t)], f.pixel_diff[f.local(t)])
        for k in range(1, self.cfg.max_flash_frames + 1):
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
        far[span:-span] = np.abs(f.hists[2 * span :] - f.hists[: -2 * span]).sum(axis=1) / 6
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

        def hot(frame: int) -> bool:
            p = probs.get(frame)
            return p is not None and max(p) >= threshold

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

    def finish(self) -> list[Transition]:
        f = self.features = self.accumulator.features()
        median = local_median(np.maximum(f.hist_diff, f.pixel_diff), _MEDIAN_RADIUS)
        candidates = [t for t in self._cut_candidates(f) if not self._is_flash(f, t)]
        clear = [t for t in candidates if self._is_clear_cut(f, t, median)]
        unsure = [t for t in candidates if t not in set(clear)]
        # a hard cut also makes the change across 2L frames peak: not a gradual candidate
        graduals = [
            g
            for g in self._gradual_candidates(f)
            if not any(abs(g - t) <= _GRADUAL_SPAN + 2 for t in clear)
        ]
        probs = self._probabilities(f, unsure + graduals)
        self.net_windows = self.runner.windows_run
        found = [cut(t, 1.0) for t in clear]
        for t in unsure:
            net = max((probs.get(k, (0.0, 0.0))[0] for k in range(t - 2, t + 2)), default=0.0)
            if net >= self.cfg.cut_confirm:
                found.append(cut(t, round(net, 4)))
        for centre in graduals:
            run = self._transition_run(probs, centre, self.cfg.gradual_confirm)
            if run is None or run[1] - run[0] + 1 < self.cfg.min_gradual_frames:
                continue
            start, end = run
            kind = classify_gradual(f, start, end)
            peak = max(max(probs.get(k, (0.0, 0.0))) for k in range(start, end + 1))
            found.append(Transition(start, end, kind, round(peak, 4)))
        return resolve_overlaps(found, self.min_shot_frames)


def resolve_overlaps(found: list[Transition], min_shot_frames: int) -> list[Transition]:
    """Drop duplicates: a cut inside a gradual interval, and the weaker of two close ones."""
    graduals = sorted({t for t in found if not t.is_cut})
    kept: list[Transition] = []
    for g in graduals:  # overlapping gradual runs (two candidates, one transition) merge
        if kept and g.start_frame <= kept[-1].end_frame + 1:
            last = kept.pop()
            merged_kind = last.kind if last.kind == g.kind else "gradual"
            g = Transition(
                last.start_frame,
                max(last.end_frame, g.end_frame),
                merged_kind,
                max(last.confidence, g.confidence),
            )
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
