"""A logo or watermark that stays on screen across shots, from per-pixel statistics.

Every picture frame (not a black one) adds, per pixel of the analysis frame, its Sobel
gradient vector, the gradient's length, whether that length is an edge, and the grey level
and its square. Over the film a burned-in logo is the one place where

- there is an edge in most picture frames (persistence), and
- the edge points the same way every time: the mean gradient vector is nearly as long as the
  mean length (coherence); the edges of changing content point every way and average out,

while the rest of the picture changes (the median pixel's temporal spread is high). Pixels
near a crop edge are left out: bar edges are fixed and strong too. The candidate pixels are
joined (a 5 x 5 closing: the letters of a text logo become one component) and the strongest
component small enough to be a logo gives the box. A vignette's ramp is coherent but far
under the edge threshold; a static shot's background is persistent only while that shot
lasts. The statistics are six arrays of the analysis frame's size: memory flat in film length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from muss_builder.curation.picture_config import WatermarkConfig

_SUMS = ("gx", "gy", "mag", "edge", "level", "level2")


@dataclass
class WatermarkFound:
    box: list[int]  # [x0, y0, x1, y1], end exclusive (source px once scaled by the caller)
    score: float  # 0..1: mean coherence of the logo's pixels


@dataclass
class WatermarkStats:
    """Per-pixel sums over the picture frames of ``[first, stop)`` (every ``frame_step``-th)."""

    width: int
    height: int
    cfg: WatermarkConfig
    black_level: int = 16
    evidence_share: float = 0.02
    first: int = 0
    stop: int | None = None
    frames: int = 0
    sums: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.sums:
            # float32 sums: a 2-hour film (86k frames at step 2) of levels up to 255**2 keeps
            # its means to ~1e-3 relative, far below any threshold's margin
            self.sums = {k: np.zeros((self.height, self.width), np.float32) for k in _SUMS}

    def process(self, index: int, gray: np.ndarray) -> None:
        if index < self.first or (self.stop is not None and index >= self.stop):
            return
        if index % self.cfg.frame_step:
            return  # by global index: ranges pick the same frames as one pass
        if (gray > self.black_level).mean() <= self.evidence_share:
            return  # a black frame shows no logo edge worth counting
        g = gray.astype(np.float32)
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
        mag = cv2.magnitude(gx, gy)
        s = self.sums
        s["gx"] += gx
        s["gy"] += gy
        s["mag"] += mag
        s["edge"] += (mag >= self.cfg.edge).astype(np.float32)
        s["level"] += g
        s["level2"] += cv2.multiply(g, g)
        self.frames += 1

    @classmethod
    def merged(cls, parts: Sequence[WatermarkStats]) -> WatermarkStats:
        """The sums of consecutive ranges (each counted only its own frames)."""
        first = parts[0]
        sums = {k: np.sum([p.sums[k] for p in parts], axis=0) for k in _SUMS}
        return cls(
            first.width, first.height, first.cfg, first.black_level, first.evidence_share,
            frames=sum(p.frames for p in parts), sums=sums,
        )  # fmt: skip

    def find(
        self,
        crops: Sequence[Sequence[int]],
        film_crop: Sequence[int],
        longest_shot_share: float = 0.0,
    ) -> WatermarkFound | None:
        """The persistent logo inside ``film_crop`` (analysis px), clear of the edges of every
        box in ``crops``; None when there is none, the picture does not change enough, or one
        shot is long enough (``longest_shot_share`` of the film's frames, at least
        ``min_persistence``) that its own static background could be as persistent: a logo
        must be on screen across shots."""
        cfg, n = self.cfg, self.frames
        if n < cfg.min_frames or longest_shot_share >= cfg.min_persistence:
            return None
        s = self.sums
        s = {k: v.astype(np.float64) for k, v in s.items()}
        mean_vec = np.hypot(s["gx"], s["gy"]) / n
        coherence = mean_vec / np.maximum(s["mag"] / n, 1e-6)
        persistence = s["edge"] / n
        std = self.temporal_std()
        allowed = self._allowed(crops, film_crop)
        if not allowed.any() or float(np.median(std[allowed])) < cfg.min_scene_std:
            return None  # nothing changes: a logo cannot be told from a static picture
        strong = mean_vec >= cfg.edge * cfg.min_persistence * cfg.min_coherence
        candidate = allowed & strong & (persistence >= cfg.min_persistence)
        candidate &= coherence >= cfg.min_coherence
        if candidate.sum() < cfg.min_pixels:
            return None
        joined = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5)))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        x0, y0, x1, y1 = film_crop
        limit = cfg.max_area_share * (x1 - x0) * (y1 - y0)
        best, best_weight = None, 0.0
        for k in range(1, count):
            bx, by, bw, bh, _ = stats[k]
            pixels = candidate & (labels == k)
            if pixels.sum() < cfg.min_pixels or bw * bh > limit:
                continue
            weight = float(mean_vec[pixels].sum())
            if weight > best_weight:
                best, best_weight = (k, [bx, by, bx + bw, by + bh]), weight
        if best is None:
            return None
        k, edges_box = best
        quiet = allowed & (std <= cfg.plate_quiet * float(np.median(std[allowed])))
        plate = self._plate(edges_box, quiet, limit)
        bx0, by0, bx1, by1 = plate
        # a 3x3 Sobel answers one pixel on each side of an edge: the logo ends one pixel in;
        # a plate's box is the box of its own (quiet) pixels
        p = cfg.pad - 1 if plate == edges_box else cfg.pad
        box = [max(x0, bx0 - p), max(y0, by0 - p), min(x1, bx1 + p), min(y1, by1 + p)]
        score = float(coherence[candidate & (labels == k)].mean())
        return WatermarkFound(box, round(min(1.0, score), 4))

    def temporal_std(self) -> np.ndarray:
        """Each pixel's grey-level standard deviation over the frames counted (float64)."""
        n = max(1, self.frames)
        level, level2 = (self.sums[k].astype(np.float64) for k in ("level", "level2"))
        return np.sqrt(np.maximum(level2 / n - (level / n) ** 2, 0.0))

    def _plate(self, box: list[int], quiet: np.ndarray, limit: float) -> list[int]:
        """``box`` grown over the quiet pixels joined to it (the logo's plate, whose border
        the edges miss over content as dark as the plate); ``box`` itself when nothing quiet
        touches it or the quiet region is too large to be a plate (``plate_max_growth``)."""
        x0, y0, x1, y1 = box
        _, labels, stats, _ = cv2.connectedComponentsWithStats(
            quiet.astype(np.uint8), connectivity=8
        )
        grown = list(box)
        for k in set(np.unique(labels[y0:y1, x0:x1])) - {0}:
            qx, qy, qw, qh, _ = stats[k]
            gx0, gy0, gx1, gy1 = grown
            grown = [min(gx0, qx), min(gy0, qy), max(gx1, qx + qw), max(gy1, qy + qh)]
        area = (grown[2] - grown[0]) * (grown[3] - grown[1])
        if area > min(limit, self.cfg.plate_max_growth * (x1 - x0) * (y1 - y0)):
            return list(box)
        return grown

    def _allowed(self, crops: Sequence[Sequence[int]], film_crop: Sequence[int]) -> np.ndarray:
        m = self.cfg.edge_margin
        allowed = np.zeros((self.height, self.width), bool)
        x0, y0, x1, y1 = film_crop
        allowed[y0 + m : max(y0 + m, y1 - m), x0 + m : max(x0 + m, x1 - m)] = True
        for cx0, cy0, cx1, cy1 in {tuple(c) for c in crops}:
            for x in (cx0, cx1):
                allowed[:, max(0, x - m - 1) : x + m + 1] = False
            for y in (cy0, cy1):
                allowed[max(0, y - m - 1) : y + m + 1, :] = False
        return allowed


def removal_plan(
    box: Sequence[int], crop: Sequence[int], cfg: WatermarkConfig
) -> tuple[str, list[int]]:
    """``(removal, crop)``: how to take the logo ``box`` out of a picture cropped to ``crop``
    (both in the same pixels). ``"crop"`` returns the crop narrowed by the band of the side
    that keeps the most picture, when it keeps at least ``cfg.crop_min_keep`` of it; otherwise
    (or for ``"delogo"``/``"none"``) the crop is unchanged and the removal is as configured,
    a crop that would cost too much falling back to ``"delogo"``."""
    x0, y0, x1, y1 = crop
    if cfg.removal != "crop":
        return cfg.removal, list(crop)
    bx0, by0, bx1, by1 = box
    options = [  # the picture left when the band beyond each side of the logo goes
        [x0, by1, x1, y1],  # the top band (down to the logo's bottom)
        [x0, y0, x1, by0],  # the bottom band
        [bx1, y0, x1, y1],  # the left band
        [x0, y0, bx0, y1],  # the right band
    ]
    area = max(1, (x1 - x0) * (y1 - y0))
    best = max(options, key=lambda b: max(0, b[2] - b[0]) * max(0, b[3] - b[1]))
    kept = max(0, best[2] - best[0]) * max(0, best[3] - best[1]) / area
    if kept >= cfg.crop_min_keep:
        return "crop", best
    return "delogo", list(crop)
