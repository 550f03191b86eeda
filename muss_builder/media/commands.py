"""Every ffmpeg and ffprobe command line the package runs, built in one place.

Commands are argument lists, never shell strings. Where a command has inputs, outputs and a
filter graph, ``ffmpeg-python`` builds it (``ffmpeg.input(...).filter(...).output(...)`` and
``get_args()``); it compiles the graph and quotes filter arguments. A few commands stay plain
lists, each for a reason given at the function and in docs/design-notes.md ("ffmpeg command
lines"): ffprobe's JSON queries (ffmpeg-python only builds ffmpeg commands), and the frame
decode, whose filter chain is a ``-vf`` simple filtergraph on purpose.

This is also the one module that builds the H.264 encoders' options: every H.264 file the
package or its fixtures write gets them from ``H264Options`` (the encoders' names themselves
are in ``core/encoders.py``, which ``config/`` can import too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import ffmpeg

from muss_builder.config import ClipsConfig
from muss_builder.core.encoders import CPU_H264, GPU_H264, H264Encoder
from muss_builder.media.tools import binary

PixelFormat = Literal["bgr24", "rgb24", "yuv420p"]
# options every command starts with: never read the terminal, no banner in the error text
_QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")


@dataclass(frozen=True)
class H264Options:
    """How an H.264 (yuv420p) stream is encoded.

    ``bit_exact`` also makes the container reproducible: no metadata, no encoder version
    string, the index at the front (``+faststart``). With ``x264_params`` pinning the threads
    (``x264_threads``) the same frames give the same bytes on any machine."""

    preset: str = "veryfast"
    crf: int = 18
    x264_params: str | None = None
    threads: int | None = None  # ffmpeg's -threads; None: ffmpeg's choice (follows the CPUs)
    keyframe_interval: int | None = None  # -g
    bit_exact: bool = False
    encoder: H264Encoder = CPU_H264  # GPU_H264: ``preset`` is p1..p7 and ``crf`` its -cq

    def codec_args(self) -> list[str]:
        """The encoder's output options as arguments, in a fixed order."""
        if self.encoder == GPU_H264:
            return self._nvenc_args()
        args = ["-c:v", CPU_H264, "-preset", self.preset, "-crf", str(self.crf)]
        args += ["-pix_fmt", "yuv420p"]
        if self.x264_params is not None:
            args += ["-x264-params", self.x264_params]
        if self.threads is not None:
            args += ["-threads", str(self.threads)]
        if self.keyframe_interval is not None:
            args += ["-g", str(self.keyframe_interval)]
        return args

    def _nvenc_args(self) -> list[str]:
        """NVENC with x264's frame-exactness: constant quality (``-rc vbr -cq`` with no
        bitrate cap, ``-b:v 0``), no B-frames (``-bf 0``: no reordered frames, so no edit list
        or negative composition offsets that some readers count as an extra frame). One frame
        out per raw frame in, as with x264: the raw input's rate is constant."""
        args = ["-c:v", GPU_H264, "-preset", self.preset, "-tune", "hq", "-rc", "vbr"]
        args += ["-cq", str(self.crf), "-b:v", "0", "-bf", "0", "-pix_fmt", "yuv420p"]
        if self.keyframe_interval is not None:
            args += ["-g", str(self.keyframe_interval)]
        return args

    def output_options(self) -> dict[str, str | None]:
        """``codec_args`` and, in bit-exact mode, the container's options, as ffmpeg-python
        output keywords (ffmpeg reads output options as a set: their order does not matter)."""
        args = self.codec_args()
        options: dict[str, str | None] = dict(zip(args[::2], args[1::2], strict=True))
        if self.bit_exact:
            options |= {"-movflags": "+faststart", "-map_metadata": "-1"}
            options |= {"-fflags": "+bitexact", "-flags:v": "+bitexact"}
        return {key.lstrip("-"): value for key, value in options.items()}


def x264_threads(threads: int, threading: str = "frame") -> str:
    """``-x264-params`` value for ``threads`` threads whose output never depends on timing.

    x264's frame threads are deterministic, but with more than one of them x264 also starts a
    lookahead thread ("sync-lookahead") that decides frame types on however many frames have
    arrived when it wakes up, so a loaded machine or a slow decoder upstream changes the
    output (three encodes of one input gave three files). ``frame`` keeps the frame threads
    and runs the lookahead in step with the encoder (``sync-lookahead=0``); ``slice`` splits
    each frame into slices instead, which never has a lookahead thread. Either way the
    thread count itself changes the bytes, so it is a config value, never the machine's CPUs.
    Speeds of each: docs/benchmarks.md "Clip encoding: deterministic threading".
    Passed through -x264-params, not -threads: ffmpeg's -threads 0 (auto) would otherwise win.
    """
    if threading == "slice" and threads > 1:
        return f"threads={threads}:sliced-threads=1"
    return f"threads={threads}:sliced-threads=0:sync-lookahead=0"


def clip_options(cfg: ClipsConfig, encoder: H264Encoder | None = None) -> H264Options:
    """The dataset clips' encoder options: ``encoder`` (default ``cfg.encoder``; the caller
    passes the CPU encoder where the GPU one cannot run, ``media/gpu.py``). x264 is
    bit-exact with threads pinned by the config; NVENC gets the config's preset and cq."""
    if (encoder or cfg.encoder) == GPU_H264:
        preset, cq = cfg.nvenc_preset, cfg.nvenc_cq
        return H264Options(preset=preset, crf=cq, bit_exact=True, encoder=GPU_H264)
    threads = x264_threads(cfg.encoder_threads, cfg.encoder_threading)
    return H264Options(preset=cfg.preset, crf=cfg.crf, x264_params=threads, bit_exact=True)


def rate_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def quiet_ffmpeg(*args: str) -> list[str]:
    """``ffmpeg ARGS`` that overwrites its output and prints errors only: for the fixture
    films of ``muss_builder.testing``, whose lavfi graphs are test material, not pipeline."""
    return [binary("ffmpeg"), *_QUIET, "-y", *args]


def raw_to_h264(
    out: str | Path,
    size: tuple[int, int],
    rate: Fraction,
    options: H264Options,
    *,
    pix_fmt: PixelFormat = "rgb24",
    scale_to: tuple[int, int] | None = None,
    every_frame: bool = False,
) -> list[str]:
    """Raw frames of ``size`` on stdin, at ``rate``, to an H.264 mp4 at ``out``; ``scale_to``
    resizes on the way; ``every_frame`` passes timestamps through (one frame out per frame in)."""
    width, height = size
    raw = {"format": "rawvideo", "pix_fmt": pix_fmt, "s": f"{width}x{height}"}
    stream = ffmpeg.input("pipe:0", **raw, framerate=rate_text(rate))
    if scale_to is not None and scale_to != size:
        stream = stream.filter("scale", scale_to[0], scale_to[1])
    extra = {"fps_mode": "passthrough"} if every_frame else {}
    command = stream.output(str(out), **options.output_options(), **extra)
    return [binary("ffmpeg"), *_QUIET, "-y", *command.get_args()]


def encoder_test(options: H264Options) -> list[str]:
    """A quarter second of grey through ``options``' encoder to the null muxer: whether the
    encoder runs here (an ffmpeg lists NVENC on machines whose GPU has none)."""
    source = ["-f", "lavfi", "-i", "color=c=gray:s=256x256:r=24:d=0.25"]
    return [binary("ffmpeg"), *_QUIET, *source, *options.codec_args(), "-f", "null", "-"]


def cuda_device_test() -> list[str]:
    """Open ffmpeg's CUDA device and pass one frame: whether NVDEC's device opens here."""
    device = ["-init_hw_device", "cuda=gpu"]
    source = ["-f", "lavfi", "-i", "nullsrc=s=64x64:d=0.04", "-frames:v", "1"]
    return [binary("ffmpeg"), *_QUIET, *device, *source, "-f", "null", "-"]


def frame_decode(
    path: str | Path,
    filters: Sequence[str],
    *,
    pix_fmt: PixelFormat,
    seek_seconds: float | None = None,
    max_frames: int | None = None,
    hwaccel: str | None = None,
) -> list[str]:
    """Decode the first video stream of ``path`` through ``filters`` to raw frames on stdout.

    A plain list, not ffmpeg-python: its compiled graphs are always ``-filter_complex`` with
    generated labels, and the decode's chain (scale flags, deinterlace, retime, showinfo) is a
    ``-vf`` simple filtergraph that every clip's pixels come from; a complex graph sets
    itself up differently (stream binding, default scaler options), so keeping ``-vf`` keeps
    the bytes. ``-loglevel info``: the timestamps come from showinfo on stderr.

    ``hwaccel`` ("cuda": NVDEC) decodes on the GPU. No ``-hwaccel_output_format``: the frames
    come back to system memory, so the CPU filters (bwdif, crop, delogo, the exact scale)
    run as on a CPU decode; a stream NVDEC cannot take falls back to ffmpeg's own decoder."""
    args = [binary("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "info", "-copyts"]
    if hwaccel is not None:  # an input option: before -ss and -i
        args += ["-hwaccel", hwaccel]
    if seek_seconds is not None and seek_seconds > 0:
        args += ["-ss", f"{seek_seconds:.6f}"]
    args += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn"]
    args += ["-vf", ",".join(filters), "-fps_mode", "passthrough"]
    if max_frames is not None:
        args += ["-frames:v", str(max_frames)]
    return [*args, "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]


def interlace_detect(path: str | Path, start: float, frames: int) -> list[str]:
    """ffmpeg's idet over ``frames`` frames from ``start`` seconds; its verdict is on stderr."""
    stream = ffmpeg.input(str(path), ss=f"{max(0.0, start):.3f}")["v:0"].filter("idet")
    command = stream.output("-", format="null", an=None, **{"frames:v": str(frames)})
    return [binary("ffmpeg"), "-hide_banner", "-nostdin", *command.get_args()]


# ffprobe: ffmpeg-python builds ffmpeg commands only (its ``probe`` runs ffprobe itself,
# without a timeout or our error text), so these are plain lists.


def probe_streams(path: str | Path) -> list[str]:
    """Container and stream facts of ``path`` as JSON."""
    args = [binary("ffprobe"), "-v", "error", "-show_format", "-show_streams"]
    return [*args, "-of", "json", str(path)]


def probe_packets(source: str | Path, entries: str, *, read_from: float | None = None) -> list[str]:
    """``entries`` (ffprobe -show_entries) of the first video stream's packets, as JSON;
    ``read_from`` seeks there first (seconds)."""
    args = [binary("ffprobe"), "-v", "error", "-select_streams", "v:0"]
    if read_from is not None:
        args += ["-read_intervals", f"{read_from:.3f}%"]
    return [*args, "-show_entries", entries, "-of", "json", str(source)]


def count_packets(source: str) -> list[str]:
    """Codec, size and packets counted by reading, of the first video stream, as JSON."""
    entries = "stream=codec_name,width,height,nb_read_packets"
    args = [binary("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets"]
    return [*args, "-show_entries", entries, "-of", "json", source]
