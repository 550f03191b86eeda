"""Keyframe filters (issue 16): text on screen (``text_overlay``, ``credits``) and ``blurry``.

A collector of the subject stage's keyframe pass (the protocol of ``captions/collector.py``):
it sees the keyframes that pass already decodes, each ALREADY cropped to its shot's active
picture, and asks for no extra frame (three keyframes per shot catch a scroll: the roll is on
screen for the whole shot). Per keyframe it runs the PP-OCRv4 text detector (``text.py``) and
the sharpness measure (``sharpness.py``); per shot it keeps a handful of numbers, never images.

What counts as text, and as which flag:
- a *line* is a run of detected boxes on one row, wide (``min_line_aspect``) and of a text's
  height (``min_line_height``..``max_line_height`` of the picture); boxes mostly inside the
  channel logo's box are the logo, never text (``text.outside_watermark``);
- ``credits``: text-dominated keyframes (at least ``credits_min_lines`` lines in one column,
  ``credits_align``, or a line over a background that is nearly all flat: a title card, an
  intertitle, a roll) in at least ``credits_min_keyframes`` of the shot's keyframes;
- ``text_overlay``: a *subtitle* line (horizontally centred, in the bottom
  ``subtitle_bottom`` or top ``subtitle_top`` band of the picture) in a keyframe of a shot
  that is not credits. Scene text (a shirt, a book cover, a shop sign) is rarely a centred
  line at the picture's foot; it is what the position rule is there to let through.

A subtitle shot is dropped (``subtitles: drop``, the default: a caption model would read the
words, and a crop changes the shot's framing) or, with ``subtitles: crop``, keeps the part of
the picture above (or below) the text band when that is at least ``crop_min_keep`` of the
picture's height; its flags then say ``subtitle_cropped`` (informational) and the report gives
the box to keep, in keyframe pixels and as fractions of the cropped picture.
"""

from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from muss_builder.curation.sharpness import edge_width, focus, judge_blur, logo_in_working
from muss_builder.curation.text import (
    TextDetector,
    aligned_lines,
    covered_share,
    flat_share,
    line_motion,
    outside_watermark,
    scene_motion,
    text_detector,
    text_rows,
)
from muss_builder.filters.keyframes import (  # noqa: F401 (re-exported: the config lives in filters/)
    BlurFilterConfig,
    KeyframeQualityConfig,
    TextFilterConfig,
)

if TYPE_CHECKING:  # the subject stage wires this collector in: no import back into it
    from muss_builder.shots.segment import Shot
    from muss_builder.subjects.keyframes import Keyframe

FLAGS = ("text_overlay", "credits", "blurry")
# keyframes waiting for the text thread: enough to ride out a slow keyframe, few enough that
# the images held stay a few megabytes
MAX_WAITING = 8
INFO_FLAGS = ("subtitle_cropped",)  # never dropping: the shot was kept, cropped above its text
MEASURES = {
    "text_share": "low",  # largest share of the picture covered by text lines, over keyframes
    "text_lines": "low",  # most text lines in one keyframe
    "sharpness": "high",  # 1 - Crété-Roffet blur of the sharpest tiles, best keyframe (0..1)
    "sharpness_rel": "high",  # sharpness / the film's median shot sharpness
    "edge_width": "low",  # width of the strongest edges, sharpest keyframe (~240-line pixels)
}


@dataclass
class ShotKeyframeQuality:
    quality: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    # subtitle shots only: {"band_px", "band_frac", "keep_px", "keep_frac", "action"}; boxes
    # [x0, y0, x1, y1] in keyframe pixels of the cropped picture, or fractions of it
    text_band: dict | None = None


@dataclass
class KeyframeQualityReport:
    shots: dict[int, ShotKeyframeQuality]
    reference_sharpness: float | None  # the film's median shot sharpness (None: no reference)
    reference_edge_width: float | None = None  # its judged shots' median edge width
    keyframes: int = 0
    text_ms: list[float] = field(default_factory=list)  # per keyframe
    sharpness_ms: list[float] = field(default_factory=list)  # per keyframe
    edge_width_ms: list[float] = field(default_factory=list)  # per shot (its sharpest keyframe)
    not_run: dict[str, str] = field(default_factory=dict)
    text_thread_seconds: float = 0.0  # the detector's time on its own thread (own_thread)


@dataclass
class _ShotState:
    size: tuple[int, int] = (0, 0)  # keyframe (w, h)
    keyframes: int = 0
    credits_like: int = 0
    subtitle_keyframes: int = 0
    lines: int = 0
    share: float = 0.0
    band: list[int] | None = None  # union of subtitle lines [x0, y0, x1, y1]
    # until the shot is settled: its keyframes and each one's subtitle-placed lines, so a line
    # can be looked for in the shot's other keyframes (scene text moves, a subtitle does not)
    images: list[np.ndarray] = field(default_factory=list)
    subtitle_lines: list[list[list[int]]] = field(default_factory=list)
    sharp: list[float] = field(default_factory=list)
    contrast: list[float] = field(default_factory=list)  # grey std per keyframe
    # the working picture of the sharpest keyframe and the logo's box in it, until the shot's
    # edge width is measured on it (once, when the pass has moved on to the next shot)
    sharpest: tuple[np.ndarray, tuple[int, int, int, int] | None] | None = None
    edge_width: float | None = None


@dataclass(frozen=True)
class _TextSeen:
    """What the detector found in one keyframe, folded into its shot in film order."""

    lines: int
    share: float  # of the picture covered by text lines
    credits_like: bool
    subtitles: list[list[int]]  # subtitle lines [x0, y0, x1, y1]
    ms: float


def load_text_detector(config: KeyframeQualityConfig) -> TextDetector | None:
    """For ``Stage.setup()``: the detector, loaded once per process, or None when the text filter
    is off; a ``ModelNotFoundError`` saying what to install when rapidocr-onnxruntime is missing."""
    if not config.text.enabled:
        return None
    t = config.text
    return text_detector(
        t.detect_max_side, t.threads, t.screen_max_side, t.screen_threshold, t.screen_min_side
    )


class KeyframeQualityCollector:
    """Fed the keyframe pass's frames in film order; ``finish`` gives flags per shot."""

    def __init__(
        self,
        shots: list[Shot],
        config: KeyframeQualityConfig,
        watermark_boxes: dict[int, list[int] | None],
        detector: TextDetector | None = None,
    ) -> None:
        self.config = config
        self.watermark = watermark_boxes
        self.detector = detector
        if detector is None and config.text.enabled:
            self.detector = load_text_detector(config)
        self.state = {s.index: _ShotState() for s in shots}
        self.report = KeyframeQualityReport(shots={}, reference_sharpness=None)
        self.text_thread: ThreadPoolExecutor | None = None
        if self.detector is not None and config.text.own_thread:
            self.text_thread = ThreadPoolExecutor(1, thread_name_prefix="text-detector")
        self.waiting: deque[tuple[_ShotState, np.ndarray, Future[_TextSeen]]] = deque()
        self.unsettled: _ShotState | None = None  # the shot whose keyframes are being folded
        self.focusing: _ShotState | None = None  # the shot whose sharpest keyframe is held

    def wanted(self) -> dict[int, list[int]]:
        """No frames beyond the keyframes: three per shot already catch a rolling credit."""
        return {}

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None:
        if not is_keyframe or keyframe.shot not in self.state:
            return
        image = keyframe.image
        h, w = image.shape[:2]
        st = self.state[keyframe.shot]
        st.size, st.keyframes = (w, h), st.keyframes + 1
        self.report.keyframes += 1
        watermark = self.watermark.get(keyframe.shot)
        if self.config.blur.enabled:
            self._add_focus(st, image, watermark)
        if self.detector is None:
            return
        if self.text_thread is None:
            self._fold(st, image, self._see_text(image, watermark))
            return
        # onnxruntime and OpenCV let go of the GIL: the detector runs while the pass decodes
        future = self.text_thread.submit(self._see_text, image, watermark)
        self.waiting.append((st, image, future))
        while len(self.waiting) > MAX_WAITING:
            self._fold(*self._next_seen())

    def _next_seen(self) -> tuple[_ShotState, np.ndarray, _TextSeen]:
        st, image, seen = self.waiting.popleft()
        return st, image, seen.result()

    def _see_text(self, image: np.ndarray, watermark: list[int] | None) -> _TextSeen:
        """The detector's lines in one keyframe (on the text thread when there is one)."""
        assert self.detector is not None
        t0 = time.perf_counter()
        cfg = self.config.text
        h, w = image.shape[:2]
        boxes = [b for b in self.detector.detect(image, watermark) if b.score >= cfg.box_score]
        rows = text_rows(outside_watermark(boxes, watermark, cfg.watermark_max_inside))
        lines = [r for r in rows if self._is_line(r, h)]
        subtitles = [r for r in lines if self._is_subtitle(r, w, h)]
        credits_like = aligned_lines(lines, w, cfg.credits_align) >= cfg.credits_min_lines
        # a card is text over a plain picture; a subtitle over a plain picture (a white wall,
        # the sky) is still a subtitle: only lines off the subtitle bands make a card
        if not credits_like and len(subtitles) < len(lines):
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            credits_like = flat_share(grey, lines) >= cfg.credits_flat
        return _TextSeen(
            lines=len(lines),
            share=covered_share(lines, w, h),
            credits_like=credits_like,
            subtitles=subtitles,
            ms=1000 * (time.perf_counter() - t0),
        )

    def _fold(self, st: _ShotState, image: np.ndarray, seen: _TextSeen) -> None:
        self.report.text_ms.append(seen.ms)
        st.lines = max(st.lines, seen.lines)
        st.share = max(st.share, seen.share)
        st.credits_like += seen.credits_like
        if st is not self.unsettled:  # keyframes come in film order: the last shot is whole
            self._settle(self.unsettled)
            self.unsettled = st
        st.images.append(image)
        st.subtitle_lines.append(seen.subtitles)

    def _settle(self, st: _ShotState | None) -> None:
        """Count a shot's subtitle lines, once all its keyframes are in, leaving out the ones
        that moved with the scene; then let go of its keyframes."""
        if st is None:
            return
        greys: list[np.ndarray] = []
        if self.config.text.moving_text_is_scene and any(st.subtitle_lines):
            greys = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in st.images]
        for k, lines in enumerate(st.subtitle_lines):
            kept = [line for line in lines if not (greys and self._moved(greys, k, line))]
            st.subtitle_keyframes += bool(kept)
            for x0, y0, x1, y1 in kept:
                b = st.band or [x0, y0, x1, y1]
                st.band = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
        st.images, st.subtitle_lines = [], []

    def _moved(self, greys: list[np.ndarray], k: int, line: list[int]) -> bool:
        """Scene text: in another keyframe of the shot the line matches best elsewhere, moved
        as the picture beside it moved, and in no keyframe does it match where it was (a
        subtitle whose cue changed matches nowhere; a news crawl moves, its picture does not)."""
        cfg = self.config.text
        moved = False
        for j, other in enumerate(greys):
            if j == k:
                continue
            stay, best, shift = line_motion(greys[k], other, line, cfg.track_search)
            if stay >= cfg.track_match:
                return False
            if moved or best < cfg.track_match or math.hypot(*shift) < cfg.track_min_shift:
                continue
            scene, scene_shift = scene_motion(greys[k], other, line, cfg.track_search)
            apart = math.hypot(shift[0] - scene_shift[0], shift[1] - scene_shift[1])
            moved = scene >= cfg.track_match and apart < cfg.track_min_shift
        return moved

    def _is_line(self, row: list[int], h: int) -> bool:
        cfg = self.config.text
        rw, rh = row[2] - row[0], row[3] - row[1]
        return rw >= cfg.min_line_aspect * rh and (
            cfg.min_line_height * h <= rh <= cfg.max_line_height * h
        )

    def _is_subtitle(self, row: list[int], w: int, h: int) -> bool:
        cfg = self.config.text
        cx, cy = (row[0] + row[2]) / 2 / w, (row[1] + row[3]) / 2 / h
        in_band = cy >= 1 - cfg.subtitle_bottom or cy <= cfg.subtitle_top
        return abs(cx - 0.5) <= cfg.subtitle_centre and in_band

    def finish(self) -> KeyframeQualityReport:
        cfg = self.config
        while self.waiting:
            self._fold(*self._next_seen())
        self._settle(self.unsettled)
        self.unsettled = None
        self._measure_edges(self.focusing)
        self.focusing = None
        if self.text_thread is not None:
            self.text_thread.shutdown()
            self.report.text_thread_seconds = sum(self.report.text_ms) / 1000
        order = sorted(self.state)
        for index in order:
            self.report.shots[index] = self._shot_text(self.state[index])
        if not cfg.text.enabled:
            self.report.not_run["text"] = "filters: text disabled"
        if cfg.blur.enabled:
            self._blur(order)
        else:
            self.report.not_run["blur"] = "filters: blur disabled"
        for shot in self.report.shots.values():
            shot.flags.sort()
        return self.report

    def _add_focus(self, st: _ShotState, image: np.ndarray, logo: list[int] | None) -> None:
        """The keyframe's sharpness and contrast; its working picture is kept while it is the
        shot's sharpest, for the shot's edge width."""
        if st is not self.focusing:  # keyframes come in film order: the last shot is whole
            self._measure_edges(self.focusing)
            self.focusing = st
        t0 = time.perf_counter()
        measured = focus(image)
        if measured.sharpness > max(st.sharp, default=-1.0):
            st.sharpest = (measured.grey, logo_in_working(logo, image.shape, measured.grey.shape))
        self.report.sharpness_ms.append(1000 * (time.perf_counter() - t0))
        st.sharp.append(measured.sharpness)
        st.contrast.append(measured.contrast)

    def _measure_edges(self, st: _ShotState | None) -> None:
        """The edge width of a whole shot's sharpest keyframe (the moment its sharpness speaks
        for), measured once; its working picture is let go."""
        if st is None or st.sharpest is None:
            return
        t0 = time.perf_counter()
        grey, logo = st.sharpest
        st.edge_width, st.sharpest = edge_width(grey, logo), None
        self.report.edge_width_ms.append(1000 * (time.perf_counter() - t0))

    def _shot_text(self, st: _ShotState) -> ShotKeyframeQuality:
        cfg = self.config.text
        out = ShotKeyframeQuality()
        if self.detector is None:
            return out
        out.quality = {"text_share": st.share, "text_lines": float(st.lines)}
        need = max(1, math.ceil(cfg.credits_min_keyframes * st.keyframes))
        if st.keyframes and st.credits_like >= need:
            out.flags.append("credits")
        elif st.band is not None and st.subtitle_keyframes >= cfg.subtitle_min_keyframes:
            out.text_band = self._band(st)
            out.flags.append(
                "subtitle_cropped" if out.text_band["action"] == "crop" else "text_overlay"
            )
        return out

    def _band(self, st: _ShotState) -> dict:
        """The subtitle band across the picture's width, and what a crop would keep."""
        w, h = st.size
        margin = round(self.config.text.band_margin * h)
        y0, y1 = max(0, st.band[1] - margin), min(h, st.band[3] + margin)
        keep = [0, 0, w, y0] if (y0 + y1) / 2 >= h / 2 else [0, y1, w, h]
        share = (keep[3] - keep[1]) / h
        crop = self.config.text.subtitles == "crop" and share >= self.config.text.crop_min_keep
        band = [0, y0, w, y1]
        return {
            "band_px": band,
            "band_frac": [band[0] / w, band[1] / h, band[2] / w, band[3] / h],
            "keep_px": keep,
            "keep_frac": [keep[0] / w, keep[1] / h, keep[2] / w, keep[3] / h],
            "keep_share": share,
            "action": "crop" if crop else "drop",
        }

    def _blur(self, order: list[int]) -> None:
        cfg = self.config.blur
        # the best keyframe: a shot is in focus when one of its moments is (a focus pull, motion
        # blur on a fast pan); an out-of-focus shot has no sharp keyframe at all
        sharp = [max(self.state[i].sharp, default=0.0) for i in order]
        widths = [self.state[i].edge_width for i in order]
        judged = []
        for i in order:
            st, flags = self.state[i], self.report.shots[i].flags
            # a black hold or a plain frame reads sharpness 0 (nothing sharp in it): not judged
            contrasty = bool(st.contrast) and float(np.median(st.contrast)) >= cfg.min_contrast
            judged.append(contrasty and "credits" not in flags)
        rel, blurry, reference, edge_reference = judge_blur(
            sharp,
            widths,
            judged,
            cfg.relative_threshold,
            cfg.min_edge_width,
            cfg.min_reference_shots,
            cfg.absolute_floor,
            min_edge_ratio=cfg.min_edge_ratio,
        )
        self.report.reference_sharpness = reference
        self.report.reference_edge_width = edge_reference
        for i, s, r, width, b in zip(order, sharp, rel, widths, blurry, strict=True):
            shot = self.report.shots[i]
            shot.quality.update({"sharpness": s, "sharpness_rel": r})
            if width is not None:
                shot.quality["edge_width"] = width
            if b:
                shot.flags.append("blurry")
