"""Pixel quality per shot (``black``, ``static``, ``flash``) from the analysis frames.

The crop and the watermark box of a shot are known only after the whole film is decoded, so
each frame is reduced at once to a coarse grid of cells (16 x 9 by default: 16-px cells of a
256 x 144 frame) with three bytes per cell: mean level, near-black share and mean change
from the previous frame. A shot's measures then use the cells fully inside its crop and clear
of the watermark box: bars and logo never count. No frame is kept; the grid costs
``3 * cells`` bytes per frame (432 B: 75 MB for a 2-hour film at 24 fps, against 110 KB for
one analysis frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from muss_builder.curation.frame_rows import FrameRows
from muss_builder.curation.picture_config import PictureConfig

DIFF_SCALE = 8.0  # change is stored in 1/8 grey level steps (0-31.9 levels per frame)
_CHUNK = 1024  # frames per storage chunk


def edges(n: int, cells: int) -> np.ndarray:
    """Integer cell boundaries splitting ``n`` pixels into ``cells`` near-equal spans."""
    return np.round(np.linspace(0, n, cells + 1)).astype(int)


@dataclass
class CellGrid:
    """Per frame, per cell: mean level, near-black share (x255), change (x``DIFF_SCALE``)."""

    width: int
    height: int
    cells_x: int
    cells_y: int
    black_level: int
    first: int = 0  # first frame whose cells this grid keeps
    stop: int | None = None  # exclusive; None: to the end
    _rows: FrameRows = field(init=False, repr=False)
    _prev: np.ndarray | None = field(default=None, repr=False)
    _prev_index: int = -2

    def __post_init__(self) -> None:
        # never a cell narrower than a pixel (a tiny analysis frame)
        self.cells_x, self.cells_y = min(self.cells_x, self.width), min(self.cells_y, self.height)
        self._xs, self._ys = edges(self.width, self.cells_x), edges(self.height, self.cells_y)
        self._area = np.outer(np.diff(self._ys), np.diff(self._xs)).astype(np.float32)
        self._rows = FrameRows((3, self.cells_y, self.cells_x), np.uint8, 0, _CHUNK)

    def _cell_mean(self, values: np.ndarray) -> np.ndarray:
        if self.width % self.cells_x == 0 and self.height % self.cells_y == 0:
            # equal whole-pixel cells (256 x 144 into 16 x 9): an area resize is their exact
            # mean and several times faster than summing
            size = (self.cells_x, self.cells_y)
            return cv2.resize(values, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        rows = np.add.reduceat(values.astype(np.float32), self._ys[:-1], axis=0)
        return np.add.reduceat(rows, self._xs[:-1], axis=1) / self._area

    def process(self, index: int, gray: np.ndarray) -> None:
        prev, self._prev = self._prev, gray
        follows, self._prev_index = self._prev_index == index - 1, index
        if index < self.first or (self.stop is not None and index >= self.stop):
            return  # a margin frame of a range: only its pixels are needed (as ``_prev``)
        level = self._cell_mean(gray.astype(np.float32))
        dark = self._cell_mean((gray <= self.black_level).astype(np.float32))
        if prev is not None and follows:
            diff = self._cell_mean(cv2.absdiff(gray, prev).astype(np.float32))
        else:
            diff = np.zeros_like(level)  # the film's first frame: no change measured
        row = np.stack([level, dark * 255.0, np.minimum(diff * DIFF_SCALE, 255.0)])
        self._rows.append(np.round(row).astype(np.uint8))

    def frames(self) -> np.ndarray:
        """``(n_frames, 3, cells_y, cells_x)`` uint8: every kept frame, in order."""
        return self._rows.array()

    def finish(self) -> None:
        """No more frames: drop the last frame's pixels (the grid keeps statistics only)."""
        self._prev = None

    @staticmethod
    def stacked(parts: Sequence[CellGrid]) -> np.ndarray:
        """The cells of consecutive ranges, in frame order (each range kept its own frames)."""
        return np.concatenate([p.frames() for p in parts])

    def cell_mask(self, box: Sequence[int], hole: Sequence[int] | None) -> np.ndarray:
        """Cells fully inside ``box`` (analysis px) and not touching ``hole``; when none is,
        the cells at least half inside, then every cell."""
        xs, ys = self._xs, self._ys
        x0, y0, x1, y1 = box
        cx = np.clip(np.minimum(xs[1:], x1) - np.maximum(xs[:-1], x0), 0, None) / np.diff(xs)
        cy = np.clip(np.minimum(ys[1:], y1) - np.maximum(ys[:-1], y0), 0, None) / np.diff(ys)
        cover = np.outer(cy, cx)
        mask = cover >= 0.999
        if hole is not None:
            hx0, hy0, hx1, hy1 = hole
            hit_x = (xs[:-1] < hx1) & (xs[1:] > hx0)
            hit_y = (ys[:-1] < hy1) & (ys[1:] > hy0)
            mask &= ~np.outer(hit_y, hit_x)
        if not mask.any():
            mask = cover >= 0.5
        return mask if mask.any() else np.ones_like(mask)


def local_median(values: np.ndarray, radius: int = 4) -> np.ndarray:
    padded = np.pad(values, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    return np.median(windows, axis=1)


def held_frames(levels: np.ndarray, max_change: float, min_frames: int) -> np.ndarray:
    """Per frame of ``levels`` (``(n_frames, n_cells)`` cell means): whether it lies in a
    hold, a run of at least ``min_frames`` consecutive frames whose every cell stays within
    ``max_change`` of the run's first frame. A run ends at the first frame that leaves that
    band; the next run starts there (greedy, in frame order)."""
    n = len(levels)
    held = np.zeros(n, bool)
    if n < min_frames:
        return held
    levels = levels.astype(np.int16)
    # a frame that moved from the one before leaves any band anchored before it, so holds lie
    # inside the runs of small steps; only those are checked frame by frame
    steps = np.abs(np.diff(levels, axis=0)).max(axis=1) <= max_change
    bounds = np.flatnonzero(np.diff(np.concatenate([[0], steps.astype(np.int8), [0]])))
    for first, last in zip(bounds[::2], bounds[1::2], strict=True):  # steps first..last-1
        if last - first + 1 < min_frames:
            continue
        start = first
        for i in range(first + 1, last + 2):  # frames first..last; last+1 closes the run
            if i <= last and np.abs(levels[i] - levels[start]).max() <= max_change:
                continue
            if i - start >= min_frames:
                held[start:i] = True
            start = i
    return held


def shot_quality(
    cells: np.ndarray, mask: np.ndarray, cfg: PictureConfig, fps: float = 24.0
) -> dict[str, float]:
    """Every measure of ``MEASURES`` for one shot's frames ``cells`` (from ``CellGrid``),
    using the cells of ``mask`` (area-weighted alike: the cells are near-equal); ``fps``
    sets how many frames a hold needs (``static.min_frozen_seconds``)."""
    if len(cells) == 0:
        return {k: 0.0 for k in ("luma", "contrast", "dark_share", "black_share", "motion",
                                 "frozen_share", "flash_share")}  # fmt: skip
    level = cells[:, 0][:, mask].astype(np.float64)
    dark = cells[:, 1][:, mask].astype(np.float64) / 255.0
    diff = cells[:, 2][:, mask].astype(np.float64) / DIFF_SCALE
    luma = level.mean(axis=1)  # per frame
    dark_frame = dark.mean(axis=1)
    # the shot's first frame is measured against the previous shot (or nothing): no change
    moving = diff[1:] if len(diff) > 1 else diff
    # a shot shorter than a hold is frozen when it holds from its first frame to its last
    hold = min(cfg.static.min_hold_frames(fps), max(2, len(cells)))
    frozen = held_frames(cells[:, 0][:, mask], cfg.static.frozen_levels, hold)
    flash = luma - local_median(luma) >= cfg.flash.delta
    return {
        "luma": round(float(luma.mean()), 3),
        "contrast": round(float(level.std(axis=1).mean()), 3),
        "dark_share": round(float(dark_frame.mean()), 4),
        "black_share": round(float((dark_frame >= cfg.black.frame_share).mean()), 4),
        "motion": round(float(moving.mean()), 4),
        "frozen_share": round(float(frozen.mean()), 4),
        "flash_share": round(float(flash.mean()), 4),
    }


def quality_flags(quality: dict[str, float], cfg: PictureConfig) -> list[str]:
    """The dropping picture flags one shot's measures fire (sorted)."""
    flags = []
    black = cfg.black.enabled and quality["black_share"] >= cfg.black.min_share
    if black:
        flags.append("black")
    # a black hold does not move either: one reason is enough
    if cfg.static.enabled and not black and quality["frozen_share"] >= cfg.static.min_frozen_share:
        flags.append("static")
    if cfg.flash.enabled and quality["flash_share"] >= cfg.flash.min_share:
        flags.append("flash")
    # absent when too few frames had a trusted translation (black, flat or flashing shots)
    shake = quality.get("shake")
    if cfg.shaky.enabled and shake is not None and shake >= cfg.shaky.max_shake:
        flags.append("shaky")
    return sorted(flags)
