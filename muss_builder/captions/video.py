"""Video input for captioning: which shots' frames make a clip, whether a model gets one, and
how a clip is described and packed for a server.

A video-capable VLM (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) describes motion and action far better
from a clip than from a few stills, so each shot goes to it as frames sampled at
``captions.video_fps`` (at most ``video_max_frames``, each at most ``video_max_pixels``), with
the frames' times in the shot. The frames are picked here but decoded by the keyframe pass
that already runs (``collector.py``): video input adds no decode of its own.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from muss_builder.config import CaptionsConfig
from muss_builder.shots.segment import Shot, clean_span

# transformers model types whose processors read video natively (a video processor, and
# video placeholder tokens in their chat templates); any other VLM gets keyframes
VIDEO_MODEL_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"})
# served model names that take video (vLLM serves these with video_url support)
_VIDEO_NAME_HINTS = ("qwen2-vl", "qwen2.5-vl", "qwen2_5_vl", "qwen3-vl", "qwen3_vl")


@dataclass
class VideoClip:
    """A shot as a short clip: BGR uint8 frames of one size, and when each was shown."""

    frames: list[np.ndarray]
    times: list[float]  # seconds from the shot's first frame, increasing
    duration: float  # the shot's length in seconds

    def note(self) -> str:
        """The clip's timing in words, appended to the prompt, so the model knows its pace
        (a 1 s shot and a 10 s shot can give the same number of frames)."""
        stamps = ", ".join(f"{t:.2f}" for t in self.times)
        return (
            f"The video is the whole shot, {self.duration:.1f} s long; its {len(self.times)} "
            f"frames are at {stamps} s."
        )


def clip_frames(shots: list[Shot], fps: float, max_frames: int) -> dict[int, list[int]]:
    """Source frames of each shot's clip: ``fps`` frames a second of the shot's clean span
    (without its incoming transition, which still shows the previous shot), evenly spaced,
    at least 2 (a video patch spans 2 frames) and at most ``max_frames`` (a long shot is
    sampled more sparsely rather than costing more tokens)."""
    chosen: dict[int, list[int]] = {}
    for i, shot in enumerate(shots):
        start, end = clean_span(shots, i)
        seconds = shot.duration_seconds * (end - start) / max(shot.n_frames, 1)
        n = min(max(2, math.ceil(seconds * fps)), max_frames, end - start)
        chosen[shot.index] = sorted({start + int((k + 0.5) * (end - start) / n) for k in range(n)})
    return chosen


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """The frame shrunk (never enlarged) so that width x height <= ``max_pixels``: the clip's
    token cost is bounded here, before JPEG and the processor's own rounding to its patches."""
    h, w = image.shape[:2]
    scale = math.sqrt(max_pixels / (h * w))
    if scale >= 1.0:
        return image
    size = (max(2, int(w * scale)), max(2, int(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def model_reads_video(config: CaptionsConfig) -> bool:
    """Whether shots go to the captioner as clips: ``video_input`` on/off as said; ``auto``
    asks the model (its ``config.json`` model type for a local checkpoint, its name for a
    served one). Decided before the keyframe pass, which must know what frames to keep."""
    if config.video_input != "auto" or config.backend == "facts" or not config.enabled:
        return config.video_input == "on" and config.backend != "facts" and config.enabled
    if config.backend == "openai":
        name = str(config.model).lower()
        return any(hint in name for hint in _VIDEO_NAME_HINTS)
    return local_model_type(str(config.model)) in VIDEO_MODEL_TYPES


def local_model_type(model: str) -> str | None:
    """``model_type`` of a checkpoint folder or a cached hub id, from its config.json, without
    loading anything; None when it cannot be read (the backend's setup then says why)."""
    folder = Path(model).expanduser()
    path = folder / "config.json"
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
        except Exception:  # not a valid hub id
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        return json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def encode_mp4(clip: VideoClip) -> bytes:
    """The clip as a small H.264 mp4 (what a server's ``video_url`` takes), at the clip's mean
    frame rate, so its length matches the shot's. Encoded from the sampled frames already in
    memory: nothing is decoded again."""
    from muss_builder.media.commands import H264Options, raw_to_h264

    frames = clip.frames
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2  # yuv420p needs even sides
    rate = Fraction(len(frames) / max(clip.duration, 1e-3)).limit_denominator(1000)
    with tempfile.TemporaryDirectory(prefix="muss-clip-") as tmp:
        out = Path(tmp) / "clip.mp4"
        command = raw_to_h264(
            out, (w, h), rate, H264Options(crf=23, bit_exact=True), pix_fmt="bgr24"
        )
        raw = b"".join(np.ascontiguousarray(f[:h, :w]).tobytes() for f in frames)
        subprocess.run(command, input=raw, check=True, capture_output=True, timeout=60)
        return out.read_bytes()
