"""The detector interface every shot-boundary detector implements.

Modelled on PySceneDetect's ``process_frame``: the caller owns the decode loop and feeds each
analysis frame once, so several detectors can share one decode. A detector returns the frame
indices at which a new shot *starts* (the first frame after a cut).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scenedetect import AdaptiveDetector
from scenedetect.common import FrameTimecode

from muss_builder.config import AdaptiveDetectorConfig


class ShotDetector(Protocol):
    name: str

    def process_frame(self, index: int, frame: np.ndarray) -> list[int]:
        """Feed frame ``index`` (BGR, analysis size); return cuts found so far, if any."""

    def finish(self, n_frames: int) -> list[int]:
        """No more frames: return any cuts still buffered."""


class AdaptiveShotDetector:
    """PySceneDetect's AdaptiveDetector (rolling-average content score) on our frame indices.

    Timecodes are built from our frame ordinals, so the cut frames it reports are exact indices
    into the decoded stream whatever the file's timestamps look like.
    """

    name = "adaptive"

    def __init__(self, config: AdaptiveDetectorConfig, fps: float) -> None:
        self.fps = fps
        self._detector = AdaptiveDetector(
            adaptive_threshold=config.adaptive_threshold,
            min_scene_len=config.min_scene_len_frames,
            window_width=config.window_width,
            min_content_val=config.min_content_val,
            luma_only=config.luma_only,
        )

    def process_frame(self, index: int, frame: np.ndarray) -> list[int]:
        cuts = self._detector.process_frame(FrameTimecode(index, fps=self.fps), frame)
        return [tc.frame_num for tc in cuts]

    def finish(self, n_frames: int) -> list[int]:
        last = FrameTimecode(max(0, n_frames - 1), fps=self.fps)
        return [tc.frame_num for tc in self._detector.post_process(last)]


def make_detector(name: str, config, fps: float) -> ShotDetector:
    """Build the configured detector (later issues add more names here)."""
    if name == "adaptive":
        return AdaptiveShotDetector(config.adaptive, fps)
    raise ValueError(f"unknown shot detector {name!r}")
