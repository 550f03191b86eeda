"""Active picture: the box inside letterbox, pillarbox or windowbox bars, per shot.

Fed analysis frames in order (``process_frame``), the detector keeps per-row and per-column
statistics per block of frames (never the frames themselves), and ``shot_boxes`` turns them
into one box per shot. A bar line (a row or a column) is one that is black in nearly every
frame that shows a picture at all; a bar is a run of bar lines from the frame's edge that ends
in a clear step up to the picture. What that rejects:

- subtitles printed inside a bar: a line counts as black when most of its pixels are black
  (a share, not the maximum), so text covering part of it does not make it picture;
- black shots and fades: frames with (almost) no picture give no evidence; a shot without
  evidence, or whose box has no clear step, inherits the nearest confident shot's box
  (earlier first), and the whole frame when no shot of the film is confident;
- dark scenes and vignetted edges of a full-frame film: a vignette darkens gradually, so the
  line where it stops being black has no step above the bar level, and it is not black in
  every frame; such a side is no evidence, and a film with no confident shot is full frame;
- bars that change inside a film: each shot gets its own box from its own frames.

Memory: ``4 * (H + W)`` floats per block of ``block_frames`` frames; ``cut(index)`` closes a
block early so that blocks never straddle a shot boundary the caller knows about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

Box = list[int]  # [x0, y0, x1, y1], end exclusive
# a blended edge line stays in a whole-pixel box while at most this share of it is bar: the
# picture's own line-to-line variation reads as a few % of bar, a real blend as more
BLEND_KEEP = 0.25
# an inherited box must find bar lines in the shot's own frames right at its edges: this many
# lines of each side it crops, next to the picture (``_cuts_picture``)
EDGE_LINES = 2


@dataclass
class _Block:
    start: int  # first frame index
    end: int  # last frame index + 1
    evidence: int  # frames showing some picture
    row_bar: np.ndarray  # per row: evidence frames in which the row is black
    col_bar: np.ndarray
    row_sum: np.ndarray  # per row: sum over evidence frames of the row's mean
    col_sum: np.ndarray


@dataclass
class _Side:
    """One side's bar width (in lines), where the picture starts to a fraction of a line (the
    first picture line can be part bar, blended by the scaler) and whether a step backs it."""

    width: int
    confident: bool
    edge: float = 0.0


@dataclass
class ActivePictureDetector:
    """Find the active picture of a film, per shot, from its analysis frames.

    Thresholds (grey levels are full range 0-255 of the BGR frame's luma):

    - ``black_level=16``: a pixel at or under it is bar black. x264 keeps flat black bars at
      0-5 (measured on the curation set); 16 leaves room for noisier encodes while a picture
      only reaches it in its darkest parts.
    - ``line_black_share=0.7``: a line is black in a frame when this share of its pixels is
      black; a subtitle inside a bar covers far less than 30 % of a row's pixels.
    - ``time_share=0.9``: a line is a bar line when black in this share of the evidence
      frames; moving dark picture content is not black that steadily.
    - ``evidence_share=0.02``: a frame shows a picture (and is evidence) when more than this
      share of its pixels is above ``black_level``; black holds and the bottom of fades are not.
    - ``min_step=24.0``: the mean level (over the evidence frames) of the ``step_lines`` picture
      lines next to a bar must exceed the bar's by this much; a bar is a hard edge, a vignette
      or a dark scene fades in and gives no such step (the same 24 as ffmpeg cropdetect's limit).
    - ``step_lines=2``: lines averaged on the picture side; the first may be blended with the
      bar by the scaler.
    - ``min_bar_share=0.01``: a bar thinner than 1 % of the frame is rounding or an encoder's
      edge, not a bar (the same cut as the plain baseline).
    - ``block_frames=12``: frames per block of statistics (half a second at 24 fps); the
      memory per film is one block's lines per ``block_frames`` frames.
    - ``max_inner_black_share=0.1``: a shot whose box holds more than 10 % bar-black lines
      (text on black, a credits card) is no evidence; real picture lines are not black in
      90 % of frames.
    """

    width: int
    height: int
    black_level: int = 16
    line_black_share: float = 0.7
    time_share: float = 0.9
    evidence_share: float = 0.02
    min_step: float = 24.0
    step_lines: int = 2
    min_bar_share: float = 0.01
    block_frames: int = 12
    max_inner_black_share: float = 0.1
    _blocks: list[_Block] = field(default_factory=list, init=False, repr=False)

    def _open(self, index: int) -> _Block:
        h, w = self.height, self.width
        block = _Block(index, index, 0, np.zeros(h), np.zeros(w), np.zeros(h), np.zeros(w))
        self._blocks.append(block)
        return block

    def cut(self, index: int) -> None:
        """A shot starts at ``index``: the next frame opens a new block."""
        if self._blocks and self._blocks[-1].end > self._blocks[-1].start:
            self._open(index)

    def process_frame(self, index: int, frame_bgr: np.ndarray) -> None:
        """Add analysis frame ``index`` (frames must come in order)."""
        if frame_bgr.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"frame {index}: {frame_bgr.shape[:2]} is not {self.height, self.width}"
            )
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        block = self._blocks[-1] if self._blocks else self._open(index)
        # blocks start at multiples of ``block_frames`` (or at a cut): a film fed in ranges
        # then splits into the same blocks as one pass (``merged`` joins the range seams)
        full = block.end - block.start >= self.block_frames
        if block.end > block.start and (full or index % self.block_frames == 0):
            block = self._open(index)
        if block.end == block.start:  # empty (just opened, or opened by ``cut``)
            block.start = index
        block.end = index + 1
        black = gray <= self.black_level
        if 1.0 - black.mean() <= self.evidence_share:
            return  # a black frame (hold, fade) says nothing about the bars
        block.evidence += 1
        block.row_bar += black.mean(axis=1) >= self.line_black_share
        block.col_bar += black.mean(axis=0) >= self.line_black_share
        block.row_sum += gray.mean(axis=1)
        block.col_sum += gray.mean(axis=0)

    @classmethod
    def merged(cls, parts: Sequence[ActivePictureDetector]) -> ActivePictureDetector:
        """One detector from detectors fed consecutive frame ranges (in order), as if one
        had seen them all: a block cut in two by a range seam is joined again."""
        first = parts[0]
        out = cls(**{k: getattr(first, k) for k in cls.__dataclass_fields__ if k != "_blocks"})
        bf = first.block_frames
        for block in (b for p in parts for b in p._blocks if b.end > b.start):
            last = out._blocks[-1] if out._blocks else None
            if last is not None and last.end == block.start and block.start % bf != 0:
                last.end, last.evidence = block.end, last.evidence + block.evidence
                for name in ("row_bar", "col_bar", "row_sum", "col_sum"):
                    setattr(last, name, getattr(last, name) + getattr(block, name))
            else:
                out._blocks.append(_Block(**vars(block)))
        return out

    def _side(self, bar: np.ndarray, mean: np.ndarray) -> _Side:
        """Bar width from index 0 of ``bar`` (per-line bar flags) and whether a step backs it."""
        n = len(bar)
        width = int(np.argmin(bar)) if not bar.all() else n
        if width == n:
            return _Side(0, False)  # every line black: no picture to step up to
        if width < max(1, math.ceil(self.min_bar_share * n)):
            # no bar: confident when the picture starts right at the edge
            return _Side(0, bool(mean[: self.step_lines].mean() > self.black_level + self.min_step))
        bar_level = float(mean[:width].mean())
        inner = mean[width + 1 : width + 1 + self.step_lines]
        picture = float(inner.mean()) if len(inner) else float(mean[width])
        first = float(mean[width])
        # the first picture line's level between the bar's and the picture's says how much of
        # it is bar: the scaler averaged a part-bar source span into it
        part = (picture - first) / (picture - bar_level) if picture > bar_level else 0.0
        edge = width + min(max(part, 0.0), 1.0)
        step = max(first, picture) - bar_level
        return _Side(width, step >= self.min_step, edge)

    def _shot(
        self, start: int, end: int
    ) -> tuple[list[float], bool, tuple[np.ndarray, np.ndarray] | None]:
        """The shot's box from its own frames, whether every side of it is confident, and its
        own bar lines (rows, columns: black in ``time_share`` of its picture frames; None when
        no frame of it showed a picture)."""
        h, w = self.height, self.width
        rows, cols, rsum, csum, n = np.zeros(h), np.zeros(w), np.zeros(h), np.zeros(w), 0
        for b in self._blocks:
            # a block belongs to the shot that holds its middle frame
            if b.evidence and start <= (b.start + b.end - 1) // 2 < end:
                rows, cols = rows + b.row_bar, cols + b.col_bar
                rsum, csum, n = rsum + b.row_sum, csum + b.col_sum, n + b.evidence
        if n == 0:
            return [0, 0, w, h], False, None
        rbar, cbar = rows >= self.time_share * n, cols >= self.time_share * n
        rmean, cmean = rsum / n, csum / n
        top, bottom = self._side(rbar, rmean), self._side(rbar[::-1], rmean[::-1])
        left, right = self._side(cbar, cmean), self._side(cbar[::-1], cmean[::-1])
        sides = (left, top, right, bottom)
        if top.width + bottom.width >= h or left.width + right.width >= w:
            return [0, 0, w, h], False, (rbar, cbar)
        box = [left.edge, top.edge, w - right.edge, h - bottom.edge]
        # a side with a bar but no step is no evidence: the shot is not confident
        confident = all(s.confident or s.width == 0 for s in sides) and any(
            s.confident for s in sides
        )
        # a picture whose own lines are black as steadily as bars (text on black: a credits
        # card) cannot tell its bars from its background
        y0, y1, x0, x1 = top.width, h - bottom.width, left.width, w - right.width
        inner = max(rbar[y0:y1].mean(), cbar[x0:x1].mean())
        return box, bool(confident and inner <= self.max_inner_black_share), (rbar, cbar)

    def shot_boxes(self, shots: Sequence[tuple[int, int]]) -> list[Box]:
        """One box per shot ``(start, end)`` (end exclusive), in whole analysis-frame pixels.

        An edge inside a line the scaler blended from bar and picture drops that line when
        more than ``BLEND_KEEP`` of it is bar, so the box is the exact analysis box or one
        line off per side (exact when the bars fall on analysis lines). A shot without
        confident evidence takes the box of the nearest confident shot (the earlier one on a
        tie); when no shot is confident every shot gets the whole frame."""
        k = BLEND_KEEP
        return [
            [math.ceil(x0 - k), math.ceil(y0 - k), math.floor(x1 + k), math.floor(y1 + k)]
            for x0, y0, x1, y1 in self.shot_edges(shots)
        ]

    def shot_evidence(self, shots: Sequence[tuple[int, int]]) -> list[bool]:
        """Per shot, whether its own frames decided its box (False: inherited or whole frame)."""
        return [self._shot(a, b)[1] for a, b in shots]

    def shot_edges(self, shots: Sequence[tuple[int, int]]) -> list[list[float]]:
        """Like ``shot_boxes`` but each edge to a fraction of an analysis line (where the
        picture starts inside a blended line); scale with ``scale_box(..., rounding="nearest")``
        for a source box that is exact up to the scaler's blending."""
        found = [self._shot(a, b) for a, b in shots]
        sure = [i for i, (_, ok, _) in enumerate(found) if ok]
        whole: list[float] = [0.0, 0.0, float(self.width), float(self.height)]
        boxes: list[list[float]] = []
        for i, (box, ok, bars) in enumerate(found):
            if ok:
                boxes.append(box)
                continue
            near = found[min(sure, key=lambda j: (abs(j - i), j))][0] if sure else whole
            # a box this shot's own frames contradict (it would cut lines they show as
            # picture: a vignetted shot next to a still with black in its picture) is not
            # its box; the whole frame is, as a dark edge is never a bar without a step
            boxes.append(list(whole) if _cuts_picture(near, bars) else near)
        return boxes


def _cuts_picture(box: Sequence[float], bars: tuple[np.ndarray, np.ndarray] | None) -> bool:
    """Whether ``box`` cuts off picture: on a side it crops, the ``EDGE_LINES`` lines nearest
    the picture are not all bar lines of the shot (``bars``: its rows and columns black in
    nearly all its picture frames). Only the lines at the step count: a subtitle printed
    inside a bar, clear of the picture, leaves them black. Never when the shot showed no
    picture (a black shot or a fade has nothing to contradict a box with)."""
    if bars is None:
        return False
    rows, cols = bars
    x0, y0, x1, y1 = box
    # past one line of slack: shots of one film blend their edge line differently
    left, top = math.floor(x0) - 1, math.floor(y0) - 1
    right, bottom = math.ceil(x1) + 1, math.ceil(y1) + 1
    sides = (
        cols[max(0, left - EDGE_LINES) : max(0, left)],
        rows[max(0, top - EDGE_LINES) : max(0, top)],
        cols[right : right + EDGE_LINES],
        rows[bottom : bottom + EDGE_LINES],
    )
    return not all(side.all() for side in sides)


def scale_box(
    box: Sequence[float],
    analysis_size: tuple[int, int],
    source_size: tuple[int, int],
    *,
    rounding: str = "inward",
) -> Box:
    """Map ``box`` from analysis pixels to source pixels, end exclusive.

    Integer boxes are scaled with integer arithmetic (exact: no float drift), fractional ones
    (``shot_edges``) in floats. ``rounding``: ``"inward"`` (the default, for cropping) rounds
    each edge towards the box's inside, so the source box never takes in a source line the
    analysis box does not fully cover (a sliver of bar is worse than a lost line of picture);
    ``"outward"`` covers every source line the analysis box touches; ``"nearest"`` is for
    fractional edges, which are estimates. The whole analysis frame always maps to the whole
    source frame, and the result is clamped to it."""
    if rounding not in {"inward", "outward", "nearest"}:
        raise ValueError(f"rounding {rounding!r}")
    (aw, ah), (sw, sh) = analysis_size, source_size
    scales = ((sw, aw), (sh, ah), (sw, aw), (sh, ah))
    out: Box = []
    for k, (v, (s, a)) in enumerate(zip(box, scales, strict=True)):
        start = k < 2
        if float(v).is_integer():
            num = int(v) * s  # exact: the edge is num / a source pixels
            down, up = num // a, -((-num) // a)
            near = (2 * num + a) // (2 * a)
        else:
            x = v * s / a
            down, up, near = math.floor(x + 1e-6), math.ceil(x - 1e-6), math.floor(x + 0.5)
        if rounding == "nearest":
            out.append(near)
        elif (rounding == "inward") == start:
            out.append(up)
        else:
            out.append(down)
    x0, y0, x1, y1 = out
    return [max(0, x0), max(0, y0), min(sw, x1), min(sh, y1)]
