"""Camera shake per shot (``shaky``), from the analysis frames the shot decode already reads.

The picture inside a ``margin`` (bars, a corner logo and burned-in subtitles sit at the edges,
and a static edge pulls a motion estimate to zero) is cut into a grid of tiles (2 x 2 by
default). Every ``frame_step``-th frame, each tile is phase-correlated with the same
tile of the frame before: where a tile's peak is trusted (``min_response``: low for flat,
noisy or flashing tiles), it gives a translation. The frame's camera translation is the median
of the trusted tiles' when at least ``min_tiles`` of them are trusted: a camera moves every
tile alike, a subject only the tiles it covers, so a close-up of a moving head leaves the
median with the background (with one whole-picture correlation, a singer's bobbing head read
as most of the shake of a shaking camera). Three floats per frame are kept, nothing else.

A shot's ``shake`` is the median, over its measured frames, of how far the frame's translation
lies from the median translation of the frames within ``window_seconds`` around it. A pan, a
tilt, a dolly or a slow handheld sway changes its speed slowly, so each frame moves like its
neighbours and the measure stays near the noise floor; a shaking camera jumps from one frame
to the next in directions its neighbours do not share. The median over the shot means a few
bad frames (a flash, a subject crossing close to the lens) do not make a steady shot shaky.

Why not the caption stage's camera motion (``captions/camera.py``): it fits a few frames per
shot (8), two to ten a second: a tremor of 3-8 Hz falls between them, and a fast but steady
camera move is then read as wandering as much as a shaking one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from muss_builder.curation.frame_rows import FrameRows
from muss_builder.filters.picture import ShakyConfig

_CHUNK = 4096  # frames per storage chunk (3 float32 numbers a frame)


@dataclass
class ShakeTrack:
    """Per analysis frame of ``[first, stop)``: the camera's translation from the previous frame
    (``dx``, ``dy`` as fractions of the frame's width; NaN when not measured or not trusted)
    and the share of tiles that were trusted (NaN on frames ``frame_step`` skips)."""

    width: int
    height: int
    cfg: ShakyConfig
    first: int = 0
    stop: int | None = None
    _rows: FrameRows = field(init=False, repr=False)
    _prev: list[np.ndarray] | None = field(default=None, repr=False)
    _prev_index: int = -2

    def __post_init__(self) -> None:
        self._rows = FrameRows((3,), np.float32, np.nan, _CHUNK)
        m, n = self.cfg.margin, self.cfg.tiles
        self._x0, self._x1 = round(self.width * m), round(self.width * (1 - m))
        self._y0, self._y1 = round(self.height * m), round(self.height * (1 - m))
        cw, ch = max(1, self._x1 - self._x0), max(1, self._y1 - self._y0)
        # tiles are cut from the analysis frame itself, shrunk only by a whole factor (a cheap
        # exact area mean) when they are over twice ``tile_side`` wide: the per-call cost of
        # the correlation, not the tile's pixels, is what counts at these sizes
        self._shrink = max(1, cw // n // self.cfg.tile_side)
        tw, th = cw // n // self._shrink, ch // n // self._shrink
        self._tile = (max(tw, 8), max(th, 8))
        self._measurable = tw >= 8 and th >= 8  # a tiny picture has no tile to correlate
        self._window = cv2.createHanningWindow(self._tile, cv2.CV_32F)
        # phase correlation measures in tile pixels; the track keeps frame widths
        self._to_width = self._shrink / self.width

    def _tiles(self, gray: np.ndarray) -> list[np.ndarray]:
        n, (tw, th), k = self.cfg.tiles, self._tile, self._shrink
        region = gray[self._y0 : self._y0 + th * k * n, self._x0 : self._x0 + tw * k * n]
        if k > 1:
            region = cv2.resize(region, (tw * n, th * n), interpolation=cv2.INTER_AREA)
        region = region.astype(np.float32)
        rows = [region[r * th : (r + 1) * th] for r in range(n)]
        return [row[:, c * tw : (c + 1) * tw] for row in rows for c in range(n)]

    def process(self, index: int, gray: np.ndarray) -> None:
        if not (self.cfg.enabled and self._measurable):
            return
        measured = index % self.cfg.frame_step == 0
        wanted = measured or (index + 1) % self.cfg.frame_step == 0  # the next one's previous
        tiles = self._tiles(gray) if wanted else None
        prev, self._prev = self._prev, tiles
        follows, self._prev_index = self._prev_index == index - 1, index
        if index < self.first or (self.stop is not None and index >= self.stop):
            return  # a margin frame of a range: only its pixels are needed (as ``_prev``)
        row = (np.nan, np.nan, np.nan)  # skipped by frame_step, or the film's first frame
        if measured and tiles is not None and prev is not None and follows:
            row = self._camera_move(prev, tiles)
        self._rows.append(row)

    def _camera_move(self, prev: list[np.ndarray], tiles: list[np.ndarray]) -> tuple:
        moves = []
        for a, b in zip(prev, tiles, strict=True):
            (dx, dy), response = cv2.phaseCorrelate(a, b, self._window)
            if response >= self.cfg.min_response:
                moves.append((dx, dy))
        share = len(moves) / len(tiles)
        if len(moves) < self.cfg.min_tiles:
            return (np.nan, np.nan, share)
        dx, dy = np.median(np.array(moves), axis=0) * self._to_width
        return (float(dx), float(dy), share)

    def frames(self) -> np.ndarray:
        """``(n_frames, 3)`` float32 (dx, dy, trusted tile share): every kept frame, in order."""
        return self._rows.array()

    def finish(self) -> None:
        self._prev = None

    @staticmethod
    def stacked(parts: Sequence[ShakeTrack]) -> np.ndarray:
        """The translations of consecutive ranges, in frame order."""
        return np.concatenate([p.frames() for p in parts])


def shot_shake(motion: np.ndarray, fps: float, cfg: ShakyConfig) -> float | None:
    """The shake of one shot's frames ``motion`` (rows of ``ShakeTrack.frames``), or None
    when fewer than ``min_frames`` measured frames, or under ``min_trusted_share`` of them,
    have a camera translation."""
    moves = motion[1:]  # the shot's first frame moved from the previous shot: not a move
    measured = np.isfinite(moves[:, 2])
    trusted = measured & np.isfinite(moves[:, 0])
    n = int(trusted.sum())
    if n < cfg.min_frames or n < cfg.min_trusted_share * int(measured.sum()):
        return None
    steps = np.where(trusted[:, None], moves[:, :2], np.nan).astype(np.float64)
    radius = max(1, round(fps * cfg.window_seconds / 2))
    padded = np.pad(steps, ((radius, radius), (0, 0)), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)
    local = np.nanmedian(windows[trusted], axis=2)  # (trusted frames, 2)
    off = np.hypot(*(steps[trusted] - local).T)
    return float(np.median(off))
