"""A generated video decoded to RGB uint8 frames, by the project's one decoder (media.decode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from muss_builder.media.decode import read_frames
from muss_builder.media.probe import probe_film


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """``(frames [T, H, W, 3] uint8 RGB, fps)`` of every frame of ``path``, at display size.

    A missing, unreadable or frameless file is a ``MediaError`` naming it. Generated videos
    are short (seconds), so all frames fit in memory.
    """
    probe = probe_film(path)  # raises MediaError naming the file when it is not a video
    frames = read_frames(path, (probe.width, probe.height), pix_fmt="rgb24", require_frames=True)
    return np.stack(list(frames.values())), float(probe.fps)
