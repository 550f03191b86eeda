"""Transition deviation and shot-cut accuracy: requested cuts vs the cuts our detector finds.

Requested cuts ``R`` are the first frames of shots 2..N (``Script.cut_frames``); detected cuts
``D`` are the boundaries (``Transition.boundary``: the cut frame, or a gradual transition's
middle) that a ``muss_builder.shots`` detector finds in the generated video. ``W`` is
``cut_tolerance_frames``.

Matching (one-to-one): every pair ``(r, d)`` with ``|r - d| <= W`` is a candidate; pairs are
taken nearest first (ties: earlier requested cut first), each cut used at most once.
- transition deviation ``TD = mean |r - d|`` over matched pairs, in frames (0 is exact;
  ``None`` when nothing matched);
- missed = ``|R|`` - matched, extra = ``|D|`` - matched;
- ``NSD = (sum |r - d| / W + missed + extra) / max(1, |R|)``: each matched cut costs its
  deviation as a share of the tolerance (0..1), each missed or extra cut a full 1, which is
  never less than a matched one costs; shot-cut accuracy ``SCA = exp(-NSD)`` (1 = exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from muss_builder.config import ShotsConfig
from muss_builder.shots.registry import make_detector
from muss_builder.shots.transitions import Transition


@dataclass
class CutMatch:
    requested: list[int]
    detected: list[int]
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (requested, detected)
    tolerance: int = 8

    @property
    def missed(self) -> int:
        return len(self.requested) - len(self.pairs)

    @property
    def extra(self) -> int:
        return len(self.detected) - len(self.pairs)

    @property
    def deviation(self) -> float | None:
        """Mean |requested - detected| over matched cuts, frames; None if none matched."""
        if not self.pairs:
            return None
        return float(np.mean([abs(r - d) for r, d in self.pairs]))

    @property
    def nsd(self) -> float:
        spread = sum(abs(r - d) for r, d in self.pairs) / self.tolerance
        return (spread + self.missed + self.extra) / max(1, len(self.requested))

    @property
    def accuracy(self) -> float:
        """Shot-cut accuracy exp(-NSD), in (0, 1]."""
        return math.exp(-self.nsd)


def match_cuts(requested: Sequence[int], detected: Sequence[int], tolerance: int = 8) -> CutMatch:
    """One-to-one matching of requested and detected cut frames within ``tolerance`` frames."""
    if tolerance < 1:
        raise ValueError(f"the cut tolerance must be at least 1 frame, got {tolerance}")
    req, det = sorted(int(r) for r in requested), sorted(int(d) for d in detected)
    candidates = sorted(
        (abs(r - d), i, j) for i, r in enumerate(req) for j, d in enumerate(det)
        if abs(r - d) <= tolerance
    )  # fmt: skip
    used_r: set[int] = set()
    used_d: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_r and j not in used_d:
            used_r.add(i)
            used_d.add(j)
            pairs.append((req[i], det[j]))
    return CutMatch(req, det, sorted(pairs), tolerance)


def detect_cuts(
    frames_rgb: np.ndarray, fps: float, detector: str = "muss", analysis_width: int = 256
) -> list[Transition]:
    """Transitions in a decoded video, by a ``muss_builder.shots`` detector fed the frames at
    analysis size (BGR), as the build pipeline feeds a film."""
    if frames_rgb.ndim != 4 or frames_rgb.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {frames_rgb.shape}")
    height, width = frames_rgb.shape[1:3]
    size = (analysis_width, max(2, round(analysis_width * height / width / 2) * 2))
    shots = make_detector(detector, ShotsConfig(), fps)
    for index, frame in enumerate(frames_rgb):
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        shots.process_frame(index, cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return shots.finish()
