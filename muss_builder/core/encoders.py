"""The names of the H.264 encoders: the one module that spells them.

``config/`` needs them for ``clips.encoder`` and ``media/commands.py`` for the command
lines; ``config`` may not import ``media`` (media imports config), so the names live here, at
the bottom of the import graph, and everything else uses these constants.
"""

from __future__ import annotations

from typing import Literal

CPU_H264 = "libx264"  # x264 on the CPU: reproducible bytes (threads pinned), the default
GPU_H264 = "h264_nvenc"  # NVENC on an NVIDIA GPU: fast, but its bytes follow GPU and driver
H264Encoder = Literal["libx264", "h264_nvenc"]
