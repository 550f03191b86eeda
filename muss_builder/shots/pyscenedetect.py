"""PySceneDetect's detectors (adaptive, content, hash, histogram) behind our detector interface.

Timecodes are built from our frame ordinals, so the cuts they report are exact indices into
the decoded stream whatever the file's timestamps look like. They find hard cuts only.
"""

from __future__ import annotations

import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, HashDetector, HistogramDetector
from scenedetect.common import FrameTimecode

from muss_builder.config import ShotsConfig
from muss_builder.shots.detector import frames_at_rate
from muss_builder.shots.transitions import Transition, cut


class SceneDetectDetector:
    """Wrap one PySceneDetect detector; ``name`` says which."""

    def __init__(self, name: str, detector: object, fps: float) -> None:
        self.name = name
        self.fps = fps
        self._detector = detector
        self._cuts: list[int] = []
        self._last = 0

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        found = self._detector.process_frame(FrameTimecode(index, fps=self.fps), frame)
        self._cuts.extend(tc.frame_num for tc in found)
        self._last = index

    def finish(self) -> list[Transition]:
        last = FrameTimecode(self._last, fps=self.fps)
        self._cuts.extend(tc.frame_num for tc in self._detector.post_process(last))
        return [cut(c) for c in sorted(set(self._cuts)) if c > 0]


def make_scenedetect(name: str, cfg: ShotsConfig, fps: float) -> SceneDetectDetector:
    """PySceneDetect detector ``name`` with the parameters in ``cfg`` (its defaults by default)."""
    if name == "adaptive":
        a = cfg.adaptive
        detector: object = AdaptiveDetector(
            adaptive_threshold=a.adaptive_threshold,
            min_scene_len=frames_at_rate(a.min_scene_len_frames, fps),
            window_width=a.window_width,
            min_content_val=a.min_content_val,
            luma_only=a.luma_only,
        )
    elif name == "content":
        detector = ContentDetector(
            threshold=cfg.content.threshold,
            min_scene_len=frames_at_rate(cfg.content.min_scene_len_frames, fps),
        )
    elif name == "hash":
        detector = HashDetector(
            threshold=cfg.hash.threshold,
            size=cfg.hash.size,
            lowpass=cfg.hash.lowpass,
            min_scene_len=frames_at_rate(cfg.hash.min_scene_len_frames, fps),
        )
    elif name == "histogram":
        detector = HistogramDetector(
            threshold=cfg.histogram.threshold,
            bins=cfg.histogram.bins,
            min_scene_len=frames_at_rate(cfg.histogram.min_scene_len_frames, fps),
        )
    else:
        raise ValueError(f"not a PySceneDetect detector: {name!r}")
    return SceneDetectDetector(name, detector, fps)
