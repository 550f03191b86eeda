"""Frame-exact re-encode of a span of source frames to a target fps and size.

Exactness comes from selecting frames ourselves: the source span is decoded (input seek a
little early, then frames picked by timestamp), each output frame ``j`` shows the source frame
that is on screen at ``t0 + j / fps_out``, and the shot boundaries inside the clip are read
off that same mapping. So the metadata and the pixels cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from muss_builder.config import ClipsConfig
from muss_builder.core.encoders import CPU_H264, GPU_H264
from muss_builder.media.commands import H264Options, clip_options
from muss_builder.media.decode import FrameReader, PictureCut, scaled_size
from muss_builder.media.gpu import choose_encoder
from muss_builder.media.h264 import H264Writer
from muss_builder.media.probe import FilmProbe, decode_options
from muss_builder.media.tools import MediaError

# Seek this far before the first wanted frame, then drop frames by timestamp: input seeking
# lands on a keyframe and decodes forward, so any margin is exact; one second is cheap.
_SEEK_MARGIN_SECONDS = 1.0
_EPS = 1e-6
# swscale picks SIMD code by CPU, and its default rounding differs from its C code (measured:
# another picture with `-cpuflags 0`), so two machines of one cluster could scale the same
# frame differently. accurate_rnd+bitexact make every code path give the C path's pixels.
EXACT_SCALE_FLAGS = "area+accurate_rnd+bitexact"


@dataclass
class ClipPlan:
    """Which source frame each output frame shows."""

    source_index: np.ndarray  # int64 [n_out]: source frame index of output frame j
    fps: Fraction

    @property
    def n_frames(self) -> int:
        return len(self.source_index)

    def first_output_frame(self, source_frame: int) -> int:
        """First output frame that shows ``source_frame`` or a later one."""
        return int(np.searchsorted(self.source_index, source_frame, side="left"))


def output_fps(cfg: ClipsConfig, probe: FilmProbe) -> Fraction:
    if cfg.fps is None:
        return Fraction(probe.fps_fraction)
    return Fraction(cfg.fps).limit_denominator(1001)


def plan_clip(
    frame_pts: np.ndarray, end_pts: float, start: int, end: int, fps: Fraction
) -> ClipPlan:
    """Map output frames of a clip of source frames ``[start, end)`` to source indices."""
    t0 = float(frame_pts[start])
    t_end = float(frame_pts[end]) if end < len(frame_pts) else end_pts
    n_out = max(1, round((t_end - t0) * float(fps)))
    times = t0 + np.arange(n_out) / float(fps)
    span = frame_pts[start:end]
    # The frame on screen at time t is the last one whose timestamp is <= t.
    picked = np.searchsorted(span, times + _EPS, side="right") - 1
    return ClipPlan(source_index=start + np.clip(picked, 0, len(span) - 1), fps=fps)


def encode_clip(
    path: str | Path,
    probe: FilmProbe,
    frame_pts: np.ndarray,
    plan: ClipPlan,
    cfg: ClipsConfig,
    out_path: str | Path,
    options: H264Options | None = None,
    picture: PictureCut | None = None,
) -> tuple[int, int]:
    """Write the planned clip as H.264 yuv420p MP4 to ``out_path``; return (width, height).

    ``picture`` cuts the active picture out (and a logo away) before the scale, so the clip's
    size keeps the box's aspect; None, or the whole frame without a logo, encodes the frame as
    it always was (the same filters, the same bytes).
    ``options`` replaces ``clip_options(cfg)`` (benchmarks compare other encoder settings)."""
    shown = picture.size if picture is not None else (probe.width, probe.height)
    width, height = scaled_size(*shown, short_side=cfg.short_side)
    first, last = int(plan.source_index[0]), int(plan.source_index[-1])
    origin = float(frame_pts[0])
    seek = float(frame_pts[first]) - origin - _SEEK_MARGIN_SECONDS
    reader = FrameReader(
        path,
        (width, height),
        pix_fmt="yuv420p",
        seek_seconds=seek if seek > 0 else None,
        **decode_options(probe),
        scale_flags=EXACT_SCALE_FLAGS,
        picture=picture,
    )
    encoder = H264Writer(
        out_path,
        (width, height),
        plan.fps,
        clip_options(cfg) if options is None else options,
        pix_fmt="yuv420p",
        what="clip encode failed",
    )
    targets = frame_pts[first : last + 1]
    j = 0
    n_out = plan.n_frames
    with encoder:  # finished when the loop ends, stopped when the decode raises
        for frame in reader:
            if frame.pts < targets[0] - _EPS:
                continue
            # Map the decoded frame to its source index by timestamp (robust to seek slop).
            k = first + int(np.searchsorted(targets, frame.pts - _EPS, side="left"))
            if k > last:
                break
            while j < n_out and plan.source_index[j] == k:
                encoder.write(frame.image)
                j += 1
            if j >= n_out:
                break
    if j != n_out:
        raise MediaError(
            f"clip decode ended early: wrote {j} of {n_out} frames (source frames {first}..{last})"
        )
    return width, height


def encode_clip_or_fall_back(
    path: str | Path,
    probe: FilmProbe,
    frame_pts: np.ndarray,
    plan: ClipPlan,
    cfg: ClipsConfig,
    out_path: str | Path,
    picture: PictureCut | None = None,
) -> tuple[tuple[int, int], str | None]:
    """``encode_clip`` with ``cfg.encoder``, or x264 where that cannot run here; returns the
    clip's size and a warning for the film's notes when the clip fell back to the CPU.

    The GPU encoder is chosen once per process (``media/gpu.py`` tries it on a tiny input);
    one that still fails on a real clip (its sessions used up, an odd size) re-encodes that
    clip with x264, so a film never fails for want of NVENC."""
    choice = choose_encoder(cfg.encoder)
    if choice.value != GPU_H264:
        options = clip_options(cfg, CPU_H264)
        size = encode_clip(path, probe, frame_pts, plan, cfg, out_path, options, picture)
        return size, choice.warning
    try:
        options = clip_options(cfg, GPU_H264)
        size = encode_clip(path, probe, frame_pts, plan, cfg, out_path, options, picture)
        return size, None
    except MediaError as exc:
        options = clip_options(cfg, CPU_H264)
        size = encode_clip(path, probe, frame_pts, plan, cfg, out_path, options, picture)
        why = f"clips.encoder {GPU_H264} failed on a clip ({exc}); it was encoded with {CPU_H264}"
        return size, why
