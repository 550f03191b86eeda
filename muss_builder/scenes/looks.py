"""What a shot looks like, for telling which shots share a place: a colour histogram.

A collector of the keyframe pass (``captions/collector.py``'s protocol): it sees the keyframes
the pass decodes anyway (cut to each shot's active picture when curation is on), asks for no
extra frame, and keeps one small vector per shot, never images. The classic shot-similarity
signal of scene segmentation (Yeung & Yeo's scene transition graph, Rasheed & Shah's shot
similarity graph) is a colour histogram: two shots of one place share its walls, light and
palette even when the framing and the people in it change, and the measure is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # the subject stage wires this collector in: no import back into it
    from muss_builder.shots.segment import Shot
    from muss_builder.subjects.keyframes import Keyframe

# hue is what tells places apart; saturation and value a little, and the least-saturated
# pixels carry no hue worth the name, which their own value bins hold
HUE_BINS, SAT_BINS, VAL_BINS = 18, 3, 3
SIDE = 160  # keyframes are shrunk to this long side first: the histogram needs no detail


def colour_histogram(image: np.ndarray) -> np.ndarray:
    """L1-normalised HSV histogram (HUE_BINS x SAT_BINS x VAL_BINS) of a BGR image."""
    h, w = image.shape[:2]
    scale = SIDE / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist(
        [hsv], [0, 1, 2], None, [HUE_BINS, SAT_BINS, VAL_BINS], [0, 180, 0, 256, 0, 256]
    ).ravel()
    total = float(hist.sum())
    return (hist / total).astype(np.float32) if total > 0 else hist.astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection: 1 for the same colours in the same amounts, 0 for none shared."""
    return float(np.minimum(a, b).sum())


class ShotLookCollector:
    """Fed the keyframe pass's frames; ``finish`` gives each shot's mean colour histogram."""

    def __init__(self, shots: list[Shot]) -> None:
        self._sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}
        self._shots = {s.index for s in shots}

    def wanted(self) -> dict[int, list[int]]:
        return {}

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None:
        if not is_keyframe or keyframe.shot not in self._shots:
            return
        hist = colour_histogram(keyframe.image)
        if keyframe.shot in self._sums:
            self._sums[keyframe.shot] += hist
        else:
            self._sums[keyframe.shot] = hist.copy()
        self._counts[keyframe.shot] = self._counts.get(keyframe.shot, 0) + 1

    def finish(self) -> dict[int, np.ndarray]:
        return {i: self._sums[i] / self._counts[i] for i in sorted(self._sums)}
