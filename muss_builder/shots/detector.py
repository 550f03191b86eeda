"""The interface every shot-boundary detector implements, and the frames detectors see:
their size (``analysis_size``) and rate (``frames_at_rate``). The detectors by name are in
``registry.py``.

Modelled on PySceneDetect's ``process_frame``: the caller owns the decode loop and feeds each
analysis frame (BGR, analysis size) once, so several detectors share one decode. ``finish``
returns the transitions found, in frame indices of the decoded stream.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from muss_builder.config import AnalysisConfig
from muss_builder.media.decode import scaled_size
from muss_builder.media.probe import FilmProbe
from muss_builder.shots.transitions import Transition


class ShotDetector(Protocol):
    name: str

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        """Feed frame ``index``; frames arrive in order (a range may start past 0)."""

    def finish(self) -> list[Transition]:
        """No more frames: every transition found, sorted."""


def frames_at_rate(frames: int, fps: float) -> int:
    """A frame-count setting chosen for 24 fps footage, as the same time at ``fps``: never
    more frames than configured, at least one. At 1 fps the 15 frames of PySceneDetect's
    minimum scene would be 15 s and merge real cuts; at 24 fps and above nothing changes."""
    return max(1, min(frames, round(fps * frames / 24)))


def analysis_size(probe: FilmProbe, analysis: AnalysisConfig) -> tuple[int, int]:
    """The size detectors see: the configured analysis width (never above the film's)."""
    return scaled_size(probe.width, probe.height, target_width=min(analysis.width, probe.width))
