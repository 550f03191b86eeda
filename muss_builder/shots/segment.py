"""One low-resolution decode of a film -> frame timestamps and a list of shots."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.media.decode import FrameReader, scaled_size
from muss_builder.media.probe import FilmProbe
from muss_builder.media.tools import MediaError
from muss_builder.shots.detector import make_detector

# A decode that stops this far short of the container's frame count, with decoder errors,
# is a truncated or corrupt file rather than a rounding difference in the estimate.
_TRUNCATION_RATIO = 0.98


@dataclass
class Shot:
    index: int
    start_frame: int  # first frame of the shot, index into the decoded stream
    end_frame: int  # exclusive
    start_seconds: float  # relative to the film's first frame
    end_seconds: float
    transition_in: str  # "start" for the first shot, "cut" for a hard cut

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    def to_dict(self) -> dict:
        return asdict(self) | {
            "n_frames": self.n_frames,
            "duration_seconds": round(self.duration_seconds, 6),
        }


@dataclass
class ShotDetection:
    shots: list[Shot]
    frame_pts: np.ndarray  # float64 seconds per decoded frame (stream time base)
    end_pts: float  # presentation end of the last frame
    detector: str
    decode_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.frame_pts)


def shots_from_cuts(cuts: list[int], frame_pts: np.ndarray, end_pts: float) -> list[Shot]:
    """Turn sorted cut frames (first frame of each new shot) into contiguous shots."""
    n = len(frame_pts)
    starts = [0, *sorted({c for c in cuts if 0 < c < n})]
    ends = [*starts[1:], n]
    origin = float(frame_pts[0])

    def seconds(frame: int) -> float:
        return round((float(frame_pts[frame]) if frame < n else end_pts) - origin, 6)

    return [
        Shot(i, s, e, seconds(s), seconds(e), "start" if i == 0 else "cut")
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]


def detect_shots(
    path: str | Path, probe: FilmProbe, shots: ShotsConfig, analysis: AnalysisConfig
) -> ShotDetection:
    """Decode ``path`` once at analysis size and run the configured detector over it."""
    size = scaled_size(probe.width, probe.height, target_width=min(analysis.width, probe.width))
    detector = make_detector(shots.detector, shots, probe.fps)
    reader = FrameReader(path, size, pix_fmt="bgr24")
    started = time.perf_counter()
    pts: list[float] = []
    cuts: list[int] = []
    for frame in reader:
        pts.append(frame.pts)
        cuts.extend(detector.process_frame(frame.index, frame.image))
    cuts.extend(detector.finish(len(pts)))
    elapsed = time.perf_counter() - started
    if not pts:
        detail = "; ".join(reader.error_lines) or "no frames"
        raise MediaError(f"no decodable video frames ({detail})")
    errors = list(reader.error_lines)
    expected = probe.frame_count_estimate
    if errors and len(pts) < _TRUNCATION_RATIO * expected:
        raise MediaError(
            f"truncated or corrupt video: decoded {len(pts)} of {expected} frames ({errors[-1]})"
        )
    frame_pts = np.asarray(pts, dtype=np.float64)
    if np.any(np.diff(frame_pts) <= 0):
        # Broken timestamps: keep frame order, rebuild times from the mean rate.
        frame_pts = frame_pts[0] + np.arange(len(pts)) / probe.fps
        errors.append("non-monotonic timestamps replaced by frame index / fps")
    last_step = float(frame_pts[-1] - frame_pts[-2]) if len(pts) > 1 else 1.0 / probe.fps
    end_pts = float(frame_pts[-1]) + last_step
    return ShotDetection(
        shots=shots_from_cuts(cuts, frame_pts, end_pts),
        frame_pts=frame_pts,
        end_pts=end_pts,
        detector=detector.name,
        decode_seconds=elapsed,
        warnings=errors,
    )
