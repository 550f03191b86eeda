"""One low-resolution decode of a film -> frame timestamps, transitions and a list of shots."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.media.decode import FrameReader, retimed
from muss_builder.media.probe import FilmProbe, decode_options, probe_film
from muss_builder.media.tools import MediaError
from muss_builder.shots.detector import ShotDetector, analysis_size
from muss_builder.shots.features import letterbox
from muss_builder.shots.registry import make_detector
from muss_builder.shots.stats import detector_columns
from muss_builder.shots.transitions import Transition

# A decode that stops this far short of the container's frame count, with decoder errors,
# is a truncated or corrupt file rather than a rounding difference in the estimate.
_TRUNCATION_RATIO = 0.98


class FrameObserver(Protocol):
    """Anything else that reads the analysis frames of the shot decode (picture quality,
    bars, watermark): fed every frame in order, like a detector, but decides no shots."""

    def process_frame(self, index: int, frame: np.ndarray) -> None: ...


# Makes the observer of one stretch of frames: ``(first, stop)`` are the frames whose
# statistics it owns (``stop`` None: to the end). A ranged decode feeds its margin frames
# too (an observer may need the frame before ``first``) and calls it inside a worker, so it
# must pickle (a module-level class or ``functools.partial``).
ObserverFactory = Callable[[int, "int | None"], FrameObserver]


@dataclass
class Shot:
    index: int
    start_frame: int  # first frame of the shot, index into the decoded stream
    end_frame: int  # exclusive
    start_seconds: float  # relative to the film's first frame
    end_seconds: float
    transition_in: str  # "start", "cut", or a gradual kind (dissolve, fade_black, ...)
    # frames [first, last] of the incoming gradual transition (None for a cut or the start);
    # start_frame is its middle, so the first frames of the shot still mix in the last one
    transition_in_frames: tuple[int, int] | None = None

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc["transition_in_frames"] = (
            list(self.transition_in_frames) if self.transition_in_frames else None
        )
        return doc | {
            "n_frames": self.n_frames,
            "duration_seconds": round(self.duration_seconds, 6),
        }


def clean_span(shots: list[Shot], i: int) -> tuple[int, int]:
    """Frames [start, end) of ``shots[i]`` that show it alone: after its incoming transition
    (which still mixes in the shot before) and before the next shot's; a shot that is all
    transition gives its whole span."""
    shot = shots[i]
    start = shot.transition_in_frames[1] + 1 if shot.transition_in_frames else shot.start_frame
    following = shots[i + 1] if i + 1 < len(shots) else None
    end = shot.end_frame
    if following is not None and following.transition_in_frames:
        end = following.transition_in_frames[0]
    if end <= start:
        return shot.start_frame, max(shot.end_frame, shot.start_frame + 1)
    return start, end


@dataclass
class ShotDetection:
    shots: list[Shot]
    transitions: list[Transition]
    frame_pts: np.ndarray  # float64 seconds per decoded frame (stream time base)
    end_pts: float  # presentation end of the last frame
    detector: str
    decode_seconds: float
    letterbox: dict[str, int] | None = None  # dark bars in display pixels, when measured
    warnings: list[str] = field(default_factory=list)
    # "rebuilt" when the film's timestamps restart or are missing: frame_pts are frame / fps
    # and every later decode must number frames the same way (see ``settled_probe``)
    timestamps: str = "stream"
    # per-frame scores and verdicts of the detector, when asked for (``shots.stats``)
    frame_stats: dict[str, list] | None = None
    # the observers made by ``observe`` (one per range, in frame order; one for a single pass)
    observed: list[Any] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.frame_pts)

    def seconds_of(self, frame: int) -> float:
        """Seconds from the first frame to ``frame`` (``n_frames`` = the end of the film)."""
        at = float(self.frame_pts[frame]) if frame < self.n_frames else self.end_pts
        return round(at - float(self.frame_pts[0]), 6)


@dataclass
class DetectorRun:
    transitions: list[Transition]
    seconds: float  # this detector's own time (process_frame + finish), decode excluded


def shots_from_transitions(
    transitions: list[Transition], frame_pts: np.ndarray, end_pts: float
) -> list[Shot]:
    """Contiguous shots whose boundaries are the transitions' boundary frames."""
    n = len(frame_pts)
    by_boundary = {t.boundary: t for t in transitions if 0 < t.boundary < n}
    starts = [0, *sorted(by_boundary)]
    ends = [*starts[1:], n]
    origin = float(frame_pts[0])

    def seconds(frame: int) -> float:
        return round((float(frame_pts[frame]) if frame < n else end_pts) - origin, 6)

    shots = []
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        t = by_boundary.get(s)
        kind = "start" if t is None else t.kind
        span = None if t is None or t.is_cut else (t.start_frame, t.end_frame)
        shots.append(Shot(i, s, e, seconds(s), seconds(e), kind, span))
    return shots


def _end_of(frame_pts: np.ndarray, fps: float) -> float:
    """When the last frame stops showing: one more step of the last interval."""
    step = float(frame_pts[-1] - frame_pts[-2]) if len(frame_pts) > 1 else 1.0 / fps
    return float(frame_pts[-1]) + step


def decode_into(
    path: str | Path,
    probe: FilmProbe,
    analysis: AnalysisConfig,
    detectors: list[ShotDetector],
    timers: list[float],
) -> tuple[list[float], list[str]]:
    """One decode at analysis size; every frame goes to every detector (timed separately)."""
    reader = FrameReader(
        path,
        analysis_size(probe, analysis),
        pix_fmt="bgr24",
        scale_flags=analysis.scale_flags,
        **decode_options(probe),
    )
    pts: list[float] = []
    for frame in reader:
        pts.append(frame.pts)
        for k, detector in enumerate(detectors):
            started = time.perf_counter()
            detector.process_frame(frame.index, frame.image)
            timers[k] += time.perf_counter() - started
    if not pts:
        detail = "; ".join(reader.error_lines) or "no frames"
        raise MediaError(f"no decodable video frames ({detail})")
    errors = list(reader.error_lines)
    if reader.untimed_frames:
        errors.append(f"{reader.untimed_frames} frames without a timestamp")
    expected = probe.frame_count_estimate
    if errors and len(pts) < _TRUNCATION_RATIO * expected:
        raise MediaError(
            f"truncated or corrupt video: decoded {len(pts)} of {expected} frames ({errors[-1]})"
        )
    return pts, errors


def run_detectors(
    path: str | Path,
    names: list[str],
    config: ShotsConfig | None = None,
    analysis: AnalysisConfig | None = None,
) -> dict[str, DetectorRun]:
    """Run several detectors off one shared decode (for benchmarks and comparisons)."""
    cfg = config or ShotsConfig()
    probe = probe_film(path)
    detectors = [make_detector(name, cfg, probe.fps) for name in names]
    timers = [0.0] * len(detectors)
    decode_into(path, probe, analysis or AnalysisConfig(), detectors, timers)
    runs: dict[str, DetectorRun] = {}
    for name, detector, spent in zip(names, detectors, timers, strict=True):
        started = time.perf_counter()
        transitions = detector.finish()
        runs[name] = DetectorRun(transitions, spent + time.perf_counter() - started)
    return runs


def detect_shots(
    path: str | Path,
    probe: FilmProbe,
    shots: ShotsConfig,
    analysis: AnalysisConfig,
    *,
    observe: ObserverFactory | None = None,
) -> ShotDetection:
    """Shots of ``path``: one pass, or parallel ranges for a film longer than a range;
    ``observe`` makes frame observers that ride the same decode (``ShotDetection.observed``)."""
    # ranges seek by the film's own timestamps: a film without usable ones is one pass
    if probe.duration_seconds > shots.range_seconds * 1.5 and probe.timestamps == "stream":
        return detect_shots_in_ranges(path, probe, shots, analysis, observe=observe)
    return detect_shots_single_pass(path, probe, shots, analysis, observe=observe)


def detect_shots_single_pass(
    path: str | Path,
    probe: FilmProbe,
    shots: ShotsConfig,
    analysis: AnalysisConfig,
    *,
    frame_stats: bool = False,
    observe: ObserverFactory | None = None,
) -> ShotDetection:
    """Decode ``path`` once at analysis size and run the configured detector over it;
    ``frame_stats`` keeps what the detector computed for each frame (for tuning);
    ``observe(0, None)`` makes an observer fed the same frames."""
    detector = make_detector(shots.detector, shots, probe.fps)
    observers = [observe(0, None)] if observe is not None else []
    started = time.perf_counter()
    fed = [detector, *observers]
    pts, errors = decode_into(path, probe, analysis, fed, [0.0] * len(fed))
    transitions = detector.finish()
    elapsed = time.perf_counter() - started
    frame_pts = np.asarray(pts, dtype=np.float64)
    stamps = probe.timestamps
    if stamps == "stream" and (
        np.any(np.diff(frame_pts) <= 0) or any("without a timestamp" in e for e in errors)
    ):
        # Timestamps restart (concatenated TS) or are missing: keep the decode order and time
        # frames as frame / fps. Later stages decode the same way (no seek), because seeking
        # and picking frames by the stream's own times cannot work on such a film.
        frame_pts = retimed(len(pts), Fraction(probe.fps_fraction))
        stamps = "rebuilt"
        errors.append("timestamps restart or are missing: rebuilt as frame / fps")
    end_pts = _end_of(frame_pts, probe.fps)
    return ShotDetection(
        shots=shots_from_transitions(transitions, frame_pts, end_pts),
        transitions=transitions,
        frame_pts=frame_pts,
        end_pts=end_pts,
        detector=detector.name,
        decode_seconds=elapsed,
        letterbox=_letterbox_of(detector, probe, analysis),
        warnings=errors,
        timestamps=stamps,
        frame_stats=detector_columns(detector) if frame_stats else None,
        observed=observers,
    )


def settled_probe(probe: FilmProbe, detection: ShotDetection) -> FilmProbe:
    """The probe every later stage uses: with rebuilt timestamps, the decode's own frame
    count and duration (the container measured only up to the first restart)."""
    if detection.timestamps != "rebuilt":
        return probe
    n = detection.n_frames
    return probe.model_copy(
        update={
            "timestamps": "rebuilt",
            "frame_count_estimate": n,
            "duration_seconds": round(detection.end_pts - float(detection.frame_pts[0]), 6),
        }
    )


def _letterbox_of(
    detector: ShotDetector, probe: FilmProbe, analysis: AnalysisConfig
) -> dict[str, int] | None:
    features = getattr(detector, "features", None)
    if features is None:
        return None
    return _scale_bars(letterbox(features.row_max, features.col_max), probe, analysis)


def _scale_bars(bars: dict[str, int], probe: FilmProbe, analysis: AnalysisConfig) -> dict:
    """Analysis-pixel bars to display pixels (the probe's width and height)."""
    width, height = analysis_size(probe, analysis)
    sx, sy = probe.width / width, probe.height / height
    return {k: round(v * (sy if k in ("top", "bottom") else sx)) for k, v in bars.items()}


def _map_ranges(calls: list[tuple]) -> list:
    """Run range detections as Ray tasks when inside a Ray job, else one after another."""
    import ray

    from muss_builder.shots.ranges import detect_range

    if ray.is_initialized() and len(calls) > 1:
        remote = ray.remote(detect_range).options(num_cpus=1, max_retries=2)
        return ray.get([remote.remote(*call) for call in calls])
    return [detect_range(*call) for call in calls]


def detect_shots_in_ranges(
    path: str | Path,
    probe: FilmProbe,
    shots: ShotsConfig,
    analysis: AnalysisConfig,
    *,
    observe: ObserverFactory | None = None,
) -> ShotDetection:
    """Split the film into overlapping frame ranges, detect each apart, merge; with
    ``observe``, each range also gets an observer owning its frames ``[start, stop)``."""
    from muss_builder.shots.ranges import packet_timestamps, plan_ranges

    started = time.perf_counter()
    frame_pts = packet_timestamps(path)
    if frame_pts is None:
        # timestamps restart or are missing: ranges cannot seek; one pass rebuilds them
        return detect_shots_single_pass(path, probe, shots, analysis, observe=observe)
    if len(frame_pts) < 2:
        raise MediaError("no video packets with timestamps")
    ranges = plan_ranges(len(frame_pts), probe.fps, shots)
    results = _map_ranges(
        [(str(path), probe, shots, analysis, frame_pts, r, observe) for r in ranges]
    )
    transitions = sorted((t for r in results for t in r.transitions), key=lambda t: t.boundary)
    end_pts = _end_of(frame_pts, probe.fps)
    bars = None
    if results[0].row_max is not None:
        rows = np.max(np.stack([r.row_max for r in results]), axis=0)
        cols = np.max(np.stack([r.col_max for r in results]), axis=0)
        bars = _scale_bars(letterbox(rows, cols), probe, analysis)
    return ShotDetection(
        shots=shots_from_transitions(transitions, frame_pts, end_pts),
        transitions=transitions,
        frame_pts=frame_pts,
        end_pts=end_pts,
        detector=shots.detector,
        decode_seconds=time.perf_counter() - started,
        letterbox=bars,
        # a split film is not a warning: its shots equal a single pass's (tested)
        warnings=[],
        observed=[r.observer for r in results if r.observer is not None],
    )
