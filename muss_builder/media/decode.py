"""Stream decoded frames out of ffmpeg together with each frame's presentation timestamp.

Every frame is passed through (``-fps_mode passthrough``): frame index ``i`` is the i-th frame
the decoder produced, which is what "frame-exact" means for variable-frame-rate files too.
Timestamps come from ffmpeg's ``showinfo`` filter on stderr, read in a thread, so one decode
gives both pixels and times. ``-copyts`` keeps them in the stream's own time base.

Two options keep every stage's decode alike (each stage passes ``decode_options(probe)``):
``deinterlace`` runs bwdif with one frame out per frame in (frame count and timestamps
unchanged), and ``retime_fps`` replaces the stream's timestamps by ``frame / fps`` for films
whose timestamps restart or are missing; such a decode always starts at the first frame,
since a seek would restart the numbering.
"""

from __future__ import annotations

import queue
import re
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from muss_builder.media.commands import PixelFormat, frame_decode
from muss_builder.media.tools import MediaError, last_lines

_SHOWINFO = re.compile(rb"\bn:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\s+pts_time:\s*(\S+)")
# showinfo prints pts_time with 6 significant digits only; exact seconds need pts * time_base.
_TIME_BASE = re.compile(rb"config in time_base:\s*(\d+)/(\d+)")
_DONE = object()
_ERROR_WORDS = ("error", "invalid", "corrupt", "partial file", "truncat", "missing picture")


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # ordinal in this decode (0 = first frame produced)
    pts: float  # seconds, stream time base (absolute, as ffprobe reports)
    image: np.ndarray  # HxWx3 uint8 (bgr24/rgb24) or (H*3/2)xW uint8 (yuv420p)


def even(value: float) -> int:
    """Round to the nearest even integer >= 2 (H.264 4:2:0 needs even sizes)."""
    return max(2, round(value / 2.0) * 2)


def scaled_size(
    width: int, height: int, *, target_width: int | None = None, short_side: int | None = None
) -> tuple[int, int]:
    """Size keeping aspect, with even dimensions; ``short_side`` never upscales."""
    if target_width is not None:
        return even(target_width), even(target_width * height / width)
    if short_side is not None:
        scale = min(1.0, short_side / min(width, height))
        return even(width * scale), even(height * scale)
    return even(width), even(height)


@dataclass(frozen=True)
class PictureCut:
    """The part of the picture a clip shows: ``box`` (the active picture, display pixels of the
    film, end exclusive) cut out before the scale, and a logo ``logo`` (pixels of that box)
    interpolated away by ffmpeg's ``delogo``. ``anamorphic``: the decoded frame's pixels are
    not square, so it is first scaled to the display size, where the box is measured."""

    display: tuple[int, int]  # the film's display width, height
    box: tuple[int, int, int, int]
    logo: tuple[int, int, int, int] | None = None
    anamorphic: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    def filters(self, scale_flags: str) -> list[str]:
        x0, y0, x1, y1 = self.box
        cut = (x0, y0, x1, y1) != (0, 0, *self.display)
        if not cut and self.logo is None:  # the whole picture: the decode is as before
            return []
        out = []
        if self.anamorphic:
            out.append(f"scale={self.display[0]}:{self.display[1]}:flags={scale_flags}")
        if cut:
            # exact: a yuv420p source is cut at the box's own (odd) lines, not rounded down
            out.append(f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0}:exact=1")
        if self.logo is not None:
            lx0, ly0, lx1, ly1 = self.logo
            out.append(f"delogo=x={lx0}:y={ly0}:w={lx1 - lx0}:h={ly1 - ly0}")
        return out


def any_of(terms: list[str]) -> str:
    """An ffmpeg expression that is non-zero where any of ``terms`` is: their sum, nested as a
    balanced tree. ffmpeg's evaluator recurses once per operator and refuses a flat chain of
    about a hundred sums ("Cannot allocate memory"); balanced, hundreds nest ~9 deep."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({any_of(terms[:half])})+({any_of(terms[half:])})"


class FrameReader:
    """Iterate over the frames of ``path`` scaled to ``size`` (display orientation).

    ``seek_seconds`` is an input seek relative to the file start (ffmpeg ``-ss``); frames keep
    their original timestamps so callers select exact frames by ``pts``.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        *,
        pix_fmt: PixelFormat = "bgr24",
        seek_seconds: float | None = None,
        scale_flags: str = "area",
        max_frames: int | None = None,
        only_times: list[float] | None = None,
        deinterlace: bool = False,
        retime_fps: Fraction | None = None,
        picture: PictureCut | None = None,
        hwaccel: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.hwaccel = hwaccel  # "cuda": NVDEC decodes, the filters stay on the CPU
        self.picture = picture
        self.width, self.height = size
        if pix_fmt not in {"bgr24", "rgb24", "yuv420p"}:
            raise ValueError(f"unsupported pix_fmt {pix_fmt}")
        self.pix_fmt = pix_fmt
        self.seek_seconds = seek_seconds
        self.scale_flags = scale_flags
        self.max_frames = max_frames
        # frames to pass on (seconds, stream time base): the rest are decoded but never
        # scaled or piped, which is most of the cost of reading a few frames of a long span
        self.only_times = only_times
        self.deinterlace = deinterlace
        self.retime_fps = retime_fps
        if retime_fps is not None:
            self.seek_seconds = None  # frame numbers (hence times) count from the first frame
        self.untimed_frames = 0  # frames the decoder gave without a timestamp
        self.stderr_tail: deque[bytes] = deque(maxlen=20)
        self.error_lines: deque[str] = deque(maxlen=50)
        self.returncode: int | None = None
        self.frames_read = 0

    def _args(self) -> list[str]:
        return frame_decode(
            self.path,
            self._filters(),
            pix_fmt=self.pix_fmt,
            seek_seconds=self.seek_seconds,
            max_frames=self.max_frames,
            hwaccel=self.hwaccel,
        )

    def _filters(self) -> list[str]:
        filters = []
        if self.retime_fps is not None:
            rate = self.retime_fps
            # one tick per frame: pts = N exactly, time N / fps (see ``retimed``)
            filters += [f"settb={rate.denominator}/{rate.numerator}", "setpts=N"]
        if self.deinterlace:
            # send_frame: one frame per frame (not per field), so indices and times stay
            # the same; deint=all also treats frames that claim to be progressive
            filters.append("bwdif=mode=send_frame:parity=auto:deint=all")
        if self.only_times:
            # half a microsecond either side: exact for any real frame rate's timestamps
            terms = [f"between(t,{t - 5e-7:.7f},{t + 5e-7:.7f})" for t in self.only_times]
            filters.append(f"select='{any_of(terms)}'")
        if self.picture is not None:
            filters += self.picture.filters(self.scale_flags)
        # setsar=1: the size already unsqueezes non-square pixels (see media.probe)
        filters += [f"scale={self.width}:{self.height}:flags={self.scale_flags}", "setsar=1"]
        return [*filters, "showinfo"]

    def _frame_bytes(self) -> tuple[int, tuple[int, ...]]:
        if self.pix_fmt == "yuv420p":
            return self.width * self.height * 3 // 2, (self.height * 3 // 2, self.width)
        return self.width * self.height * 3, (self.height, self.width, 3)

    def _pump_stderr(self, stream, times: queue.Queue) -> None:
        time_base: Fraction | None = None
        for line in stream:
            match = _SHOWINFO.search(line)
            if match:
                pts, pts_time = match.group(2), match.group(3)
                if pts == b"NOPTS":
                    times.put(None)
                elif time_base is not None:
                    times.put(float(int(pts) * time_base))
                else:
                    times.put(float(pts_time))
                continue
            base = _TIME_BASE.search(line)
            if base and int(base.group(2)) > 0:
                time_base = Fraction(int(base.group(1)), int(base.group(2)))
            else:
                self.stderr_tail.append(line.rstrip())
                text = last_lines(line, 1)
                # "... dts to muxer" is about our raw output pipe, not about the film
                if "to muxer" in text:
                    continue
                if any(word in text.lower() for word in _ERROR_WORDS):
                    self.error_lines.append(text)
        times.put(_DONE)

    def __iter__(self) -> Iterator[DecodedFrame]:
        nbytes, shape = self._frame_bytes()
        proc = subprocess.Popen(
            self._args(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        times: queue.Queue = queue.Queue()
        pump = threading.Thread(target=self._pump_stderr, args=(proc.stderr, times), daemon=True)
        pump.start()
        index = 0
        last_pts = None
        try:
            assert proc.stdout is not None
            while True:
                buf = proc.stdout.read(nbytes)
                if not buf:
                    break
                if len(buf) != nbytes:
                    raise MediaError(f"decode of {self.path.name}: short frame at {index}")
                pts = times.get(timeout=60)
                if pts is _DONE:
                    raise MediaError(f"decode of {self.path.name}: frame {index} has no timestamp")
                if pts is None:  # no timestamp: continue at the previous spacing
                    pts = (last_pts or 0.0) + 1e-3
                    self.untimed_frames += 1
                last_pts = pts
                image = np.frombuffer(buf, dtype=np.uint8).reshape(shape)
                yield DecodedFrame(index=index, pts=pts, image=image)
                index += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            pump.join(timeout=5)
        # A decoder that hit corrupt data may still exit 0; a non-zero exit is always an error
        # unless we stopped reading early on purpose.
        if proc.returncode not in (0, -9) and index == 0:
            raise MediaError(f"decode of {self.path.name} failed: {self._tail()}")
        self.returncode = proc.returncode
        self.frames_read = index

    def _tail(self) -> str:
        lines = [ln.decode("utf-8", "replace") for ln in self.stderr_tail if ln.strip()]
        return " | ".join(lines[-3:]) if lines else "no message"


def retimed(n_frames: int, fps: Fraction) -> np.ndarray:
    """The times a ``retime_fps`` decode gives its frames, computed the same way."""
    step = 1 / fps
    return np.asarray([float(i * step) for i in range(n_frames)], dtype=np.float64)


class StreamsBytes(Protocol):
    """A source that writes its bytes to a file, e.g. a shard member read in chunks."""

    def copy_to(self, out: IO[bytes]) -> None: ...


def read_frames(
    source: bytes | str | Path | StreamsBytes,
    size: tuple[int, int],
    *,
    wanted: Collection[int] | None = None,
    pix_fmt: PixelFormat = "rgb24",
    require_frames: bool = False,
) -> dict[int, np.ndarray]:
    """Frames of a video (a file, its bytes, or a source that streams them) scaled to ``size``,
    by index: every frame, or only ``wanted`` (the decode stops after the last of them).

    Indices missing from the result are frames the video does not have; ``require_frames``
    makes a video without any decodable frame a ``MediaError`` naming what ffmpeg said."""
    if wanted is not None and not wanted:
        return {}
    if isinstance(source, str | Path):
        return _read_file(Path(source), size, wanted, pix_fmt, require_frames)
    with tempfile.TemporaryDirectory(prefix="muss-clip-") as tmp:
        # a file, not a pipe: an mp4 whose index is at its end cannot be read from a pipe
        path = Path(tmp) / "clip.mp4"
        with open(path, "wb") as out:
            if isinstance(source, bytes):
                out.write(source)
            else:  # streamed: the clip is never whole in memory
                source.copy_to(out)
        return _read_file(path, size, wanted, pix_fmt, require_frames)


def _read_file(
    path: Path,
    size: tuple[int, int],
    wanted: Collection[int] | None,
    pix_fmt: PixelFormat,
    require_frames: bool,
) -> dict[int, np.ndarray]:
    targets = None if wanted is None else set(wanted)
    last = None if targets is None else max(targets)
    reader = FrameReader(path, size, pix_fmt=pix_fmt, max_frames=None if last is None else last + 1)
    frames: dict[int, np.ndarray] = {}
    for frame in reader:
        if targets is None or frame.index in targets:
            frames[frame.index] = frame.image
    if require_frames and not frames:
        detail = "; ".join(reader.error_lines) or "no frames decoded"
        raise MediaError(f"{path}: no decodable video frames ({detail})")
    return frames
