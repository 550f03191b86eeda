"""The one H.264 writer: raw frames in, an H.264 (yuv420p) mp4 out, through an ffmpeg pipe.

Frames are streamed (``H264Writer.write``), so a clip is never whole in memory; ``write_h264``
is the whole-array form. The encoder's options are ``commands.H264Options``; with
``bit_exact`` and pinned x264 threads (``commands.clip_options``) the same frames give the
same bytes on any machine, which the dataset's clips rely on.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from muss_builder.media.commands import H264Options, PixelFormat, raw_to_h264
from muss_builder.media.tools import MediaError, last_lines


def frame_rate(fps: float | Fraction) -> Fraction:
    """The exact rate ffmpeg is given: a Fraction as it is, a float as the nearest fraction
    with a denominator up to 1001 (23.976 -> 2997/125, 29.97 -> 2997/100)."""
    return fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)


class H264Writer:
    """Write frames of ``size`` (width, height) to ``path``; ``close`` (or the end of a
    ``with`` block) finishes the file and raises ``MediaError`` when ffmpeg failed (its
    message starts with ``what``).

    A frame is an array of the pixel format's shape (HxWx3 for rgb24/bgr24, (H*3/2)xW for
    yuv420p) or its bytes."""

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: float | Fraction,
        options: H264Options | None = None,
        *,
        pix_fmt: PixelFormat = "rgb24",
        scale_to: tuple[int, int] | None = None,
        every_frame: bool = False,
        what: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.what = what or f"encoding {self.path.name} failed"  # the error's first words
        self.size = size
        width, height = size
        self.frame_bytes = width * height * 3 // (2 if pix_fmt == "yuv420p" else 1)
        args = raw_to_h264(
            self.path,
            size,
            frame_rate(fps),
            options or H264Options(),
            pix_fmt=pix_fmt,
            scale_to=scale_to,
            every_frame=every_frame,
        )
        self.frames_written = 0
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame: np.ndarray | bytes) -> None:
        data = frame if isinstance(frame, bytes) else np.ascontiguousarray(frame).tobytes()
        if len(data) != self.frame_bytes:
            raise ValueError(
                f"{self.path.name}: a frame of {len(data)} bytes, the size {self.size} "
                f"needs {self.frame_bytes}"
            )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
        except BrokenPipeError:  # ffmpeg has gone: its exit status and stderr say why
            self.close()
            raise MediaError(f"{self.what}: ffmpeg stopped reading frames") from None
        self.frames_written += 1

    def close(self) -> Path:
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # ffmpeg gone: its exit says why
                proc.stdin.close()
        stderr = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise MediaError(f"{self.what}: {last_lines(stderr)}")
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg without finishing the file (an error upstream)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_h264(
    frames: Iterable[np.ndarray],
    path: str | Path,
    fps: float | Fraction,
    options: H264Options | None = None,
    *,
    pix_fmt: PixelFormat = "rgb24",
    scale_to: tuple[int, int] | None = None,
    every_frame: bool = False,
) -> Path:
    """Encode ``frames`` (all of one size) to ``path``; return ``path``."""
    stream = iter(frames)
    first = next(stream, None)
    if first is None:
        raise ValueError(f"{Path(path).name}: no frames to write")
    height, width = first.shape[:2]
    if pix_fmt == "yuv420p":
        height = height * 2 // 3
    writer = H264Writer(
        path,
        (width, height),
        fps,
        options,
        pix_fmt=pix_fmt,
        scale_to=scale_to,
        every_frame=every_frame,
    )
    with writer:
        writer.write(first)
        for frame in stream:
            writer.write(frame)
    return Path(path)
