"""The interface every shot-boundary detector implements, and the registry of detectors.

Modelled on PySceneDetect's ``process_frame``: the caller owns the decode loop and feeds each
analysis frame (BGR, analysis size) once, so several detectors share one decode. ``finish``
returns the transitions found, in frame indices of the decoded stream.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from muss_builder.config import ShotsConfig
from muss_builder.shots.transitions import Transition

DETECTORS = ("muss", "adaptive", "content", "hash", "histogram", "transnetv2")


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


def make_detector(name: str, cfg: ShotsConfig, fps: float) -> ShotDetector:
    """Build detector ``name`` with its parameters from ``cfg``."""
    if name == "muss":
        from muss_builder.shots.combined import MussDetector

        return MussDetector(cfg.muss, cfg.transnetv2, cfg.min_shot_frames_at(fps), fps)
    if name == "transnetv2":
        from muss_builder.shots.transnet_detector import TransNetDetector

        return TransNetDetector(cfg.transnetv2, cfg.muss.min_gradual_frames)
    if name in ("adaptive", "content", "hash", "histogram"):
        from muss_builder.shots.pyscenedetect import make_scenedetect

        return make_scenedetect(name, cfg, fps)
    raise ValueError(f"unknown shot detector {name!r} (one of {', '.join(DETECTORS)})")
