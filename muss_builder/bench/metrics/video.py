"""A generated video decoded to RGB uint8 frames, through ffmpeg as the rest of the project does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from muss_builder.media.decode import FrameReader
from muss_builder.media.probe import probe_film
from muss_builder.media.tools import MediaError


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """``(frames [T, H, W, 3] uint8 RGB, fps)`` of every frame of ``path``, at display size.

    A missing, unreadable or frameless file is a ``MediaError`` naming it. Generated videos
    are short (seconds), so all frames fit in memory.
    """
    probe = probe_film(path)  # raises MediaError naming the file when it is not a video
    reader = FrameReader(path, (probe.width, probe.height), pix_fmt="rgb24")
    frames = [frame.image for frame in reader]
    if not frames:
        detail = "; ".join(reader.error_lines) or "no frames decoded"
        raise MediaError(f"{path}: no decodable video frames ({detail})")
    return np.stack(frames), float(probe.fps)
