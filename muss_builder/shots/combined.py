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
   pictures, hold no hard step, and fit a blend or a moving edge (``intervals.py`` finds
   them, ``gradual.py`` names them).
4. A clear cut (large change, far above its neighbours) is accepted. A doubtful one is asked
   of TransNetV2 when the net runs (every frame on a GPU; ``net_windows_per_minute`` windows
   on a CPU, 0 by default: see docs/design-notes.md); otherwise it is a cut when the change
   across it is a step, not a ramp, and touches at least ``min_changed_share`` of the picture.
   A picture that appears on or vanishes into an empty frame (a credit card cut to black) is
   a candidate below the candidate floor and needs no changed share (all of it changed); its
   step is measured on the picture's side only.
5. Transitions closer than ``min_shot_seconds`` keep the stronger one; a cut inside a gradual
   interval belongs to it.
Cut frames come from the feature peak (the first frame that differs), so they are exact.
Every fixed threshold is named, with its reason, in ``thresholds.py``; ``--stats-file`` of
``muss-builder shots`` writes what this detector computed for each frame (``stats.py``).
"""

from __future__ import annotations

import numpy as np

from muss_builder.config import MussDetectorConfig, TransNetConfig
from muss_builder.shots.detector import frames_at_rate
from muss_builder.shots.features import FeatureAccumulator, FrameFeatures, hist_distances
from muss_builder.shots.gradual import classify_gradual
from muss_builder.shots.intervals import FeatureGradualFinder
from muss_builder.shots.thresholds import MUSS_THRESHOLDS, MussThresholds
from muss_builder.shots.transitions import Transition, cut
from muss_builder.shots.transnet import TransNetRunner

# what finish() decided about each candidate frame, for the statistics file (shots/stats.py)
Verdicts = dict[int, str]


def changed_share(f: FrameFeatures, t: int, threshold: float) -> float:
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
        thresholds: MussThresholds = MUSS_THRESHOLDS,
    ) -> None:
        self.fps = fps
        self.cfg = cfg
        self.th = thresholds
        self.min_shot_frames = min_shot_frames
        th = thresholds
        self.peak_radius = (
            th.peak_radius if fps >= th.peak_radius_min_fps else th.peak_radius_low_fps
        )
        # a flash is short in time: max_flash_frames counts frames at 24 fps (1/6 s); at a
        # low rate the same frames would span seconds and swallow a real shot between two
        # alike (A B A); never more frames than configured
        self.flash_frames = frames_at_rate(cfg.max_flash_frames, fps)
        self.runner = TransNetRunner(net.device, net.batch_windows)
        self.full_pass = cfg.full_transnet == "always" or (
            cfg.full_transnet == "auto" and self.runner.device == "cuda"
        )
        self.intervals = FeatureGradualFinder(cfg, thresholds)
        self.accumulator = FeatureAccumulator()
        self.features: FrameFeatures | None = None
        # kept by finish() for the statistics file: verdicts per candidate, net probabilities
        self.cut_verdicts: Verdicts = {}
        self.gradual_verdicts: Verdicts = {}
        self.probabilities: dict[int, tuple[float, float]] = {}

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        self.accumulator.process_frame(index, frame)

    # ------------------------------------------------------------------ candidates
    def empty_edges(self, f: FrameFeatures) -> np.ndarray:
        """int8 [n]: +1 where a picture appears at t on an empty frame t - 1, -1 where the
        picture of t - 1 vanishes into an empty frame t, 0 elsewhere."""
        empty = f.luma_std < self.th.empty_std
        content = f.luma_std > self.th.content_std
        edges = np.zeros(f.n, np.int8)
        edges[1:][empty[:-1] & content[1:]] = 1
        edges[1:][content[:-1] & empty[1:]] = -1
        return edges

    def _cut_candidates(self, f: FrameFeatures) -> list[int]:
        score = np.maximum(f.hist_diff, f.pixel_diff)
        med = local_median(score, self.th.median_radius)
        above = score - self.cfg.cut_candidate_ratio * med
        # the local median is ~0 on a still shot, where noise would be many times it; an empty
        # frame has no noise, so a picture appearing on it needs a smaller margin
        normal = (score > self.cfg.cut_candidate_floor) & (above > self.th.median_floor)
        on_empty_edge = (self.empty_edges(f) != 0) & (above > self.th.empty_edge_floor)
        keep = (normal | on_empty_edge) & is_local_peak(score, self.peak_radius)
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
                if back < self.th.flash_return * score:
                    return True
        return False

    def gradual_change(self, f: FrameFeatures) -> np.ndarray:
        """Colour change from frame t - L to t + L (0 where the film is too short for it)."""
        span = self.th.gradual_span
        far = np.zeros(f.n, np.float32)
        if f.n > 2 * span:
            far[span:-span] = hist_distances(f.hists[2 * span :], f.hists[: -2 * span])
        return far

    def _gradual_candidates(self, f: FrameFeatures) -> list[int]:
        span = self.th.gradual_span
        if f.n <= 2 * span:
            return []
        far = self.gradual_change(f)
        keep = (far > self.th.gradual_floor) & is_local_peak(far, span)
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

        span = self.th.gradual_span
        seeds = [c for c in range(centre - span, centre + span + 1) if hot(c)]
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
        spike = score / (float(median[f.local(t)]) + self.th.median_floor)
        return score >= self.cfg.cut_accept_without_net and spike >= self.cfg.clear_cut_spike

    def step_ratio(self, f: FrameFeatures, t: int, edge: int = 0) -> float:
        """Change across ``t`` over the largest change beside it: high for a cut (a step),
        near 1 for motion (a ramp). Two frames each side, because footage converted to a
        higher frame rate repeats frames and a single neighbour can be a repeat. On an empty
        edge (``edge`` of ``empty_edges``: +1 a picture appears at ``t``, -1 it vanishes) only
        the picture's side counts: the other is an empty frame, and the frame after an empty
        one may already start the next shot (a roll's first row of text)."""
        if f.local(t) < 3 or f.local(t) + 2 >= f.n:
            return 0.0

        def change(a: int, b: int) -> float:
            return f.pixel_between(a, b) + f.hist_between(a, b)

        before, after = [(t - 3, t - 2), (t - 2, t - 1)], [(t, t + 1), (t + 1, t + 2)]
        sides = after if edge > 0 else before if edge < 0 else before + after
        beside = max(change(a, b) for a, b in sides)
        # a still picture beside an empty frame has no noise for step_floor to allow for
        floor = self.th.empty_edge_floor if edge else self.th.step_floor
        return change(t - 1, t) / (beside + floor)

    def finish(self) -> list[Transition]:
        f = self.features = self.accumulator.features()
        found: list[Transition] = []
        candidates = self._typed_cut_candidates(f, found)
        median = local_median(np.maximum(f.hist_diff, f.pixel_diff), self.th.median_radius)
        clear = {t for t in candidates if self._is_clear_cut(f, t, median)}
        found += [cut(t, self.th.clear_cut_confidence) for t in sorted(clear)]
        self.cut_verdicts.update((t, "clear_cut") for t in clear)
        # a cut that also jumps in pixels (not just in colour) is a step no dissolve contains
        steps = {
            t
            for t in candidates
            if f.pixel_diff[f.local(t)] > self.th.step_pixel_jump
            and (t in clear or self.step_ratio(f, t) >= self.cfg.step_ratio)
        }
        untyped = self._typed_gradual_candidates(f, steps, clear, found)
        unsure = [t for t in candidates if t not in clear]
        # The net is slow on a CPU: it sees the most doubtful candidates, within a budget.
        asks = self._net_questions(f, unsure, untyped)
        self.probabilities = self._probabilities(f, asks)
        found += self._decide_unsure_cuts(f, unsure, asks)
        found += self._net_gradual(f, untyped, asks)
        return resolve_overlaps(found, self.min_shot_frames)

    def _typed_cut_candidates(self, f: FrameFeatures, found: list[Transition]) -> list[int]:
        """Cut candidates that are neither a flash nor the bottom of a fade (fades go to
        ``found``): a fade's darkest (brightest) frames change fast and look like a cut."""
        candidates = []
        for t in self._cut_candidates(f):
            if self._is_flash(f, t):
                self.cut_verdicts[t] = "flash"
                continue
            fade = self.intervals.fade_near(f, t)
            if fade is not None and fade.start_frame - 1 <= t <= fade.end_frame + 1:
                found.append(fade)
                self.cut_verdicts[t] = fade.kind
            else:
                candidates.append(t)
        return candidates

    def _typed_gradual_candidates(
        self, f: FrameFeatures, steps: set[int], clear: set[int], found: list[Transition]
    ) -> list[int]:
        """Gradual candidates typed from features go to ``found``; the others (untyped) are
        returned for the net, unless a clear cut explains them."""
        untyped = []
        for centre in self._gradual_candidates(f):
            typed = self.intervals.fade_near(f, centre) or self.intervals.feature_gradual(
                f, centre, steps
            )
            if typed is not None:
                found.append(typed)
                self.gradual_verdicts[centre] = typed.kind
            elif not any(
                abs(centre - t) <= self.th.gradual_span + self.th.cut_shadow_margin for t in clear
            ):
                # (a hard cut also makes the change across 2L frames peak)
                untyped.append(centre)
            else:
                self.gradual_verdicts[centre] = "cut_shadow"
        return untyped

    def _decide_unsure_cuts(
        self, f: FrameFeatures, unsure: list[int], asks: set[int]
    ) -> list[Transition]:
        """Doubtful cut candidates: the net's word when it was asked, else the step rule."""
        cuts = []
        reach = self.th.net_cut_reach
        empty_edges = self.empty_edges(f)
        for t in unsure:
            edge = int(empty_edges[f.local(t)])
            if t in asks:
                net = max(
                    self.probabilities.get(k, (0.0, 0.0))[0] for k in range(t - reach, t + reach)
                )
                confirmed = net >= self.cfg.cut_confirm
                if confirmed:
                    cuts.append(cut(t, round(net, 4)))
                self.cut_verdicts[t] = "net_cut" if confirmed else "net_no_cut"
            elif self.step_ratio(f, t, edge) >= self.cfg.step_ratio and (
                edge != 0
                or changed_share(f, t, self.th.changed_pixel) >= self.cfg.min_changed_share
            ):
                cuts.append(cut(t, self.th.step_cut_confidence))
                self.cut_verdicts[t] = "step_cut"
            else:
                self.cut_verdicts[t] = "step_no_cut"
        return cuts

    def _net_gradual(
        self, f: FrameFeatures, untyped: list[int], asks: set[int]
    ) -> list[Transition]:
        """Untyped gradual candidates the net was asked about: its run of hot frames."""
        probs = self.probabilities
        found = []
        for centre in untyped:
            if centre not in asks:
                self.gradual_verdicts[centre] = "not_asked"
                continue
            run = self._transition_run(probs, centre, self.cfg.gradual_confirm)
            if run is None or run[1] - run[0] + 1 < self.cfg.min_gradual_frames:
                self.gradual_verdicts[centre] = "net_no_gradual"
                continue
            start, end = run
            kind = classify_gradual(f, start, end, self.th.gradual)
            peak = max(max(probs.get(k, (0.0, 0.0))) for k in range(start, end + 1))
            found.append(Transition(start, end, kind, round(peak, 4)))
            self.gradual_verdicts[centre] = f"net_{kind}"
        return found

    def _net_questions(self, f: FrameFeatures, unsure: list[int], untyped: list[int]) -> set[int]:
        """Candidates the net will look at: all on a GPU, else the budget's worth, untyped
        gradual candidates first, then cut candidates whose step ratio is closest to the rule."""
        if self.full_pass:
            return set(unsure) | set(untyped)
        minutes = f.n / max(1e-6, self.fps) / 60.0
        budget = round(self.cfg.net_windows_per_minute * minutes)
        ranked = list(untyped) + sorted(
            unsure,
            key=lambda t: abs(np.log(self.step_ratio(f, t) + 1e-6) - np.log(self.cfg.step_ratio)),
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
