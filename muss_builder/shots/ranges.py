"""Detect one long film in time ranges on separate workers, merged into one result.

Each range ``[a, b)`` of frames is decoded with ``margin`` extra frames on each side (an input
seek, then frames kept by timestamp), run through a fresh detector, and only transitions whose
boundary falls in ``[a, b)`` are kept. Every decision of our detectors looks at most a couple of
hundred frames around a frame, so with a margin wider than that each range decides exactly as
a single pass would (a test checks that the merged result equals the single pass).

Global frame indices come from the demuxer's packet timestamps (no decode), so a worker knows
which frame it is looking at without reading the film from the start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.media.commands import probe_packets
from muss_builder.media.decode import FrameReader
from muss_builder.media.probe import FilmProbe, decode_options
from muss_builder.media.tools import MediaError, run
from muss_builder.shots.detector import analysis_size
from muss_builder.shots.registry import make_detector
from muss_builder.shots.transitions import Transition

MIN_MARGIN_FRAMES = 200  # > TransNetV2 window reach (75) + longest gradual run (60) + medians
_MATCH_TOLERANCE = 1e-4  # seconds: a decoded frame's pts must equal its packet's pts


def packet_timestamps(path: str | Path) -> np.ndarray | None:
    """Presentation timestamps (seconds, stream time base) of every video frame, sorted;
    None when they cannot number the frames: a packet without one, or timestamps that
    restart (decode timestamps going back, two frames at one time)."""
    # integer pts times the time base: ffprobe's pts_time has only six decimals
    out = run(
        probe_packets(path, "packet=pts,dts:stream=time_base"),
        what="list video packets",
        timeout=600,
    )
    doc = json.loads(out or b"{}")
    base = Fraction((doc.get("streams") or [{}])[0].get("time_base", "1/1"))
    packets = doc.get("packets") or []
    if any(not str(p.get("pts", "N/A")).lstrip("-").isdigit() for p in packets):
        return None
    dts = [int(p["dts"]) for p in packets if str(p.get("dts", "N/A")).lstrip("-").isdigit()]
    ticks = sorted(int(p["pts"]) for p in packets)
    if any(b < a for a, b in pairwise(dts)) or any(b == a for a, b in pairwise(ticks)):
        return None
    return np.asarray([float(t * base) for t in ticks], dtype=np.float64)


@dataclass(frozen=True)
class FrameRange:
    start: int  # first frame whose transitions this range reports
    stop: int  # exclusive
    margin: int

    @property
    def decode_start(self) -> int:
        return max(0, self.start - self.margin)

    def decode_stop(self, n_frames: int) -> int:
        return min(n_frames, self.stop + self.margin)


def plan_ranges(n_frames: int, fps: float, cfg: ShotsConfig) -> list[FrameRange]:
    length = max(1, round(cfg.range_seconds * fps))
    margin = max(MIN_MARGIN_FRAMES, round(cfg.range_overlap_seconds * fps))
    return [FrameRange(a, min(a + length, n_frames), margin) for a in range(0, n_frames, length)]


@dataclass
class RangeResult:
    transitions: list[Transition]
    row_max: np.ndarray | None
    col_max: np.ndarray | None
    observer: Any = None  # the range's frame observer (``segment.ObserverFactory``), if any


def detect_range(
    path: str,
    probe: FilmProbe,
    shots: ShotsConfig,
    analysis: AnalysisConfig,
    frame_pts: np.ndarray,
    frame_range: FrameRange,
    observe: Callable[[int, int | None], Any] | None = None,
) -> RangeResult:
    """Transitions with boundaries in ``frame_range`` (decoding its margins too); an
    observer made by ``observe(start, stop)`` sees the same frames, margins included, and
    keeps statistics of ``[start, stop)`` only, so merged ranges count each frame once."""
    first = frame_range.decode_start
    last = frame_range.decode_stop(len(frame_pts)) - 1
    origin = float(frame_pts[0])
    seek = float(frame_pts[first]) - origin - 1.0  # a second early, then frames by timestamp
    reader = FrameReader(
        path,
        analysis_size(probe, analysis),
        pix_fmt="bgr24",
        scale_flags=analysis.scale_flags,
        seek_seconds=seek if seek > 0 else None,
        **decode_options(probe),
    )
    detector = make_detector(shots.detector, shots, probe.fps)
    observer = observe(frame_range.start, frame_range.stop) if observe is not None else None
    expected = first
    for frame in reader:
        index = int(np.searchsorted(frame_pts, frame.pts - _MATCH_TOLERANCE))
        if index >= len(frame_pts) or abs(frame_pts[index] - frame.pts) > _MATCH_TOLERANCE:
            raise MediaError(f"decoded frame at {frame.pts:.6f}s has no packet timestamp")
        if index < first:
            continue
        if index > last:
            break
        if index != expected:
            raise MediaError(f"range decode skipped frames {expected}..{index - 1}")
        detector.process_frame(index, frame.image)
        if observer is not None:
            observer.process_frame(index, frame.image)
        expected += 1
    if expected != last + 1:
        raise MediaError(f"range decode ended at frame {expected}, expected {last + 1}")
    found = [t for t in detector.finish() if frame_range.start <= t.boundary < frame_range.stop]
    features = getattr(detector, "features", None)
    return RangeResult(
        found, getattr(features, "row_max", None), getattr(features, "col_max", None), observer
    )
