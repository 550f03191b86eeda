"""Cheap per-frame features, computed once from the shared analysis decode.

Kept for every frame of a range: a 48x27 RGB thumbnail (TransNetV2's input, 3.9 kB), an HSV
histogram distance to the previous frame, a pixel distance to the previous frame, and luma
statistics; plus per-row/column maximum luma for letterbox detection. Ten minutes at 24 fps
is about 56 MB, which is why long films are detected in ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

THUMB_SIZE = (48, 27)  # (width, height): TransNetV2's input
_HIST_SIZE = (64, 36)
_BINS = (32, 16, 16)  # hue, saturation, value
_RANGES = ((0, 180), (0, 256), (0, 256))
_BAR_LUMA = 24  # a row or column never brighter than this (0..255) is a letterbox bar


def _histogram(bgr: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(cv2.resize(bgr, _HIST_SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
    hists = [
        cv2.calcHist([hsv], [c], None, [b], list(r)).ravel()
        for c, (b, r) in enumerate(zip(_BINS, _RANGES, strict=True))
    ]
    return np.concatenate([h / max(1.0, h.sum()) for h in hists]).astype(np.float32)


def hist_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Half L1 distance per channel, averaged, along the last axis: 0 = same colours,
    1 = disjoint. Works on one pair of histograms or on stacks of them."""
    return np.abs(a - b).sum(axis=-1) / (2 * len(_BINS))


def hist_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(hist_distances(a, b))


def pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, 0..1."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() / 255.0)


@dataclass
class FrameFeatures:
    """Features of frames ``first .. first + n - 1``."""

    first: int
    thumbs: np.ndarray  # uint8 [n, 27, 48, 3] RGB
    hists: np.ndarray  # float32 [n, 64] HSV histograms
    hist_diff: np.ndarray  # float32 [n]: distance to the previous frame (0 for the first)
    pixel_diff: np.ndarray  # float32 [n]
    luma: np.ndarray  # float32 [n]: mean luma 0..1
    luma_std: np.ndarray  # float32 [n]
    row_max: np.ndarray  # uint8 [H]: brightest value each analysis row reached
    col_max: np.ndarray  # uint8 [W]

    @property
    def n(self) -> int:
        return len(self.thumbs)

    def local(self, frame: int) -> int:
        return frame - self.first

    def gray(self, frame: int) -> np.ndarray:
        """The thumbnail of ``frame`` as float grey levels 0..1, [27, 48]."""
        return self.thumbs[self.local(frame)].astype(np.float32).mean(axis=2) / 255.0

    def hist_between(self, a: int, b: int) -> float:
        return hist_distance(self.hists[self.local(a)], self.hists[self.local(b)])

    def pixel_between(self, a: int, b: int) -> float:
        return pixel_distance(self.thumbs[self.local(a)], self.thumbs[self.local(b)])


class FeatureAccumulator:
    """``process_frame`` for every analysis frame (BGR), then ``features()``."""

    def __init__(self) -> None:
        self.first: int | None = None
        self._thumbs: list[np.ndarray] = []
        self._hists: list[np.ndarray] = []
        self._row_max: np.ndarray | None = None
        self._col_max: np.ndarray | None = None

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        if self.first is None:
            self.first = index
        elif index != self.first + len(self._thumbs):
            raise ValueError(f"frames must arrive in order: got {index}")
        thumb = cv2.resize(frame, THUMB_SIZE, interpolation=cv2.INTER_AREA)
        self._thumbs.append(cv2.cvtColor(thumb, cv2.COLOR_BGR2RGB))
        self._hists.append(_histogram(frame))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        rows, cols = gray.max(axis=1), gray.max(axis=0)
        if self._row_max is None:
            self._row_max, self._col_max = rows, cols
        else:
            np.maximum(self._row_max, rows, out=self._row_max)
            np.maximum(self._col_max, cols, out=self._col_max)

    def features(self) -> FrameFeatures:
        if self.first is None:
            raise ValueError("no frames")
        thumbs = np.stack(self._thumbs)
        hists = np.stack(self._hists)
        hist_diff = np.zeros(len(thumbs), np.float32)
        hist_diff[1:] = hist_distances(hists[1:], hists[:-1])
        signed = thumbs.astype(np.int16)
        pixel_diff = np.zeros(len(thumbs), np.float32)
        pixel_diff[1:] = np.abs(np.diff(signed, axis=0)).mean(axis=(1, 2, 3)) / 255.0
        gray = thumbs.astype(np.float32).mean(axis=3) / 255.0
        return FrameFeatures(
            first=self.first,
            thumbs=thumbs,
            hists=hists,
            hist_diff=hist_diff,
            pixel_diff=pixel_diff,
            luma=gray.mean(axis=(1, 2)),
            luma_std=gray.std(axis=(1, 2)),
            row_max=self._row_max,
            col_max=self._col_max,
        )


def letterbox(row_max: np.ndarray, col_max: np.ndarray) -> dict[str, int]:
    """Bars (in analysis pixels) that stayed dark in every frame: top, bottom, left, right."""

    def run(values: np.ndarray) -> int:
        bright = np.nonzero(values > _BAR_LUMA)[0]
        return int(bright[0]) if len(bright) else 0

    return {
        "top": run(row_max),
        "bottom": run(row_max[::-1]),
        "left": run(col_max),
        "right": run(col_max[::-1]),
    }
