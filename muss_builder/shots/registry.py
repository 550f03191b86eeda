"""The shot detectors by name: the names the config accepts, and the factory that builds one.

Apart from ``detector.py`` (the interface) because the detectors import that module.
"""

from __future__ import annotations

from typing import get_args

from muss_builder.config import ShotsConfig
from muss_builder.shots.detector import ShotDetector

# the names ``shots.detector`` accepts in a pipeline YAML, in the config's order
DETECTORS: tuple[str, ...] = get_args(ShotsConfig.model_fields["detector"].annotation)


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
