"""Picture filters off the shot decode: active picture (bars), persistent logo, pixel quality.

``analyse_film`` runs the shot detector and a ``PictureObserver`` over the same analysis frames
(one decode; for a long film one observer per parallel range, merged by frame range so the
overlap margins count once). When the shots are known the report is built: each shot's crop
(``active_picture``), the film's logo box (``watermark``), then each shot's measures inside
its crop and clear of the logo (``frame_quality``) and the flags they fire.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.curation.active_picture import ActivePictureDetector, scale_box
from muss_builder.curation.frame_quality import CellGrid, quality_flags, shot_quality
from muss_builder.curation.picture_config import (
    DROPPING,
    FLAGS,
    INFORMATIONAL,
    MEASURES,
    PictureConfig,
)
from muss_builder.curation.shake import ShakeTrack, shot_shake
from muss_builder.curation.watermark import WatermarkFound, WatermarkStats
from muss_builder.media.probe import FilmProbe
from muss_builder.shots.detector import analysis_size
from muss_builder.shots.segment import ShotDetection, detect_shots

__all__ = [
    "DROPPING",
    "FLAGS",
    "INFORMATIONAL",
    "MEASURES",
    "PictureConfig",
    "PictureObserver",
    "PictureReport",
    "WatermarkFound",
    "analyse_film",
    "bars_of",
    "picture_report",
]


@dataclass
class PictureReport:
    film_crop: list[int]  # source px: the box of the most footage; whole frame without bars
    shot_crops: list[list[int]]  # per shot, source px
    bars: list[str | None]  # per shot: letterbox | pillarbox | windowbox | None
    watermark: WatermarkFound | None  # box in source px
    shot_quality: list[dict[str, float]]  # per shot, every measure of MEASURES
    shot_flags: list[list[str]]  # per shot, sorted (dropping and informational)
    seconds: dict[str, float] = field(default_factory=dict)  # cost of each part
    parts: int = 1  # observers merged: one per frame range of a ranged decode
    ran: bool = True  # False: ``PictureConfig.enabled`` was off (whole frames, no measures)

    def film_fields(self) -> dict:
        """The film record's ``crop`` and ``watermark`` (``removal`` is the caller's choice)."""
        mark = self.watermark
        return {
            "crop": list(self.film_crop),
            "watermark": {"box": list(mark.box), "score": mark.score} if mark else None,
        }

    def shot_fields(self, k: int) -> dict:
        """Shot ``k``'s ``crop``, ``quality`` and (picture) ``flags`` for its record."""
        crop, quality, flags = self.shot_crops[k], self.shot_quality[k], self.shot_flags[k]
        return {"crop": list(crop), "quality": dict(quality), "flags": list(flags)}


@dataclass
class PictureObserver:
    """Fed the analysis frames of ``[first, stop)`` (and a range's margin frames, which it
    only uses as the previous frame); picklable, so a range worker can return it."""

    width: int
    height: int
    cfg: PictureConfig
    first: int = 0
    stop: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ap = self.cfg.active_picture
        self.bars = ActivePictureDetector(
            self.width, self.height, **ap.model_dump(exclude={"enabled"})
        )
        self.cells = CellGrid(
            self.width, self.height, self.cfg.cells_x, self.cfg.cells_y,
            self.cfg.black.level, self.first, self.stop,
        )  # fmt: skip
        self.marks = WatermarkStats(
            self.width, self.height, self.cfg.watermark, ap.black_level, ap.evidence_share,
            self.first, self.stop,
        )  # fmt: skip
        self.shake = ShakeTrack(self.width, self.height, self.cfg.shaky, self.first, self.stop)
        self.seconds = dict.fromkeys(
            ("gray", "active_picture", "quality", "watermark", "shake"), 0.0
        )

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        t0 = time.perf_counter()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        t1 = time.perf_counter()
        owned = index >= self.first and (self.stop is None or index < self.stop)
        if owned and self.cfg.active_picture.enabled:
            self.bars.process_frame(index, gray)
        t2 = time.perf_counter()
        self.cells.process(index, gray)
        t3 = time.perf_counter()
        if self.cfg.watermark.enabled:
            self.marks.process(index, gray)
        t4 = time.perf_counter()
        self.shake.process(index, gray)
        t5 = time.perf_counter()
        spent = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
        for key, seconds in zip(self.seconds, spent, strict=True):
            self.seconds[key] += seconds

    @classmethod
    def merged(
        cls, parts: Sequence[PictureObserver]
    ) -> tuple[PictureObserver, np.ndarray, np.ndarray]:
        """The first part holding every part's statistics, the cells of every frame and the
        translations of every frame (``ShakeTrack``)."""
        out = parts[0]
        for p in parts:
            p.cells.finish()
            p.shake.finish()
        cells = CellGrid.stacked([p.cells for p in parts])
        motion = ShakeTrack.stacked([p.shake for p in parts])
        out.bars = ActivePictureDetector.merged([p.bars for p in parts])
        out.marks = WatermarkStats.merged([p.marks for p in parts])
        out.seconds = {k: sum(p.seconds[k] for p in parts) for k in out.seconds}
        return out, cells, motion


@dataclass(frozen=True)
class ObserverFactory:
    """Makes the observer of one frame range (a module-level class: it pickles for Ray)."""

    width: int
    height: int
    cfg: PictureConfig

    def __call__(self, first: int, stop: int | None) -> PictureObserver:
        return PictureObserver(self.width, self.height, self.cfg, first, stop)


def bars_of(box: Sequence[int], width: int, height: int, min_share: float = 0.01) -> str | None:
    """Which bars ``box`` leaves in a ``width`` x ``height`` frame (a side over 1 %)."""
    x0, y0, x1, y1 = box
    rows = max(y0, height - y1) > min_share * height
    cols = max(x0, width - x1) > min_share * width
    return "windowbox" if rows and cols else "letterbox" if rows else "pillarbox" if cols else None


def _film_crop(crops: list[list[int]], lengths: list[int], whole: list[int]) -> list[int]:
    """The box of the most frames (ties: the earliest such box)."""
    if not crops:
        return whole
    frames: Counter[tuple[int, ...]] = Counter()
    for box, n in zip(crops, lengths, strict=True):
        frames[tuple(box)] += n
    return list(max(frames, key=lambda b: frames[b]))


def picture_report(
    observer: PictureObserver,
    cells: np.ndarray,
    motion: np.ndarray,
    shots: Sequence[tuple[int, int]],
    source_size: tuple[int, int],
    fps: float,
) -> PictureReport:
    """The report of a film whose analysis frames ``observer`` saw, for shots ``(start, end)``
    (``cells`` and ``motion`` from ``PictureObserver.merged``; ``fps`` sizes the shake window)."""
    cfg, (w, h), (sw, sh) = observer.cfg, (observer.width, observer.height), source_size
    started = time.perf_counter()
    whole = [0, 0, w, h]
    if cfg.active_picture.enabled and shots:
        boxes = observer.bars.shot_boxes(shots)
        edges = observer.bars.shot_edges(shots)
    else:
        boxes, edges = [whole for _ in shots], [whole for _ in shots]
    crops = [scale_box(e, (w, h), (sw, sh), rounding="nearest") for e in edges]
    lengths = [b - a for a, b in shots]
    film_box = _film_crop(boxes, lengths, whole)
    longest = max(lengths, default=0) / max(1, sum(lengths))
    mark = observer.marks.find(boxes, film_box, longest) if cfg.watermark.enabled else None
    watermark = None
    if mark is not None:  # outward: the source box covers all of the logo
        watermark = WatermarkFound(
            scale_box(mark.box, (w, h), (sw, sh), rounding="outward"), mark.score
        )
    bars = [bars_of(c, sw, sh, cfg.active_picture.min_bar_share) for c in crops]
    qualities, flags = [], []
    for (a, b), box, bar in zip(shots, boxes, bars, strict=True):
        mask = observer.cells.cell_mask(box, mark.box if mark else None)
        quality = shot_quality(cells[a:b], mask, cfg, fps)
        if cfg.shaky.enabled and (shake := shot_shake(motion[a:b], fps, cfg.shaky)) is not None:
            quality["shake"] = round(shake, 5)  # unmeasured (too few trusted frames): absent
        found = quality_flags(quality, cfg)
        found += [bar] if bar else []
        found += ["watermark"] if watermark else []
        qualities.append(quality)
        flags.append(sorted(found))
    seconds = {k: round(v, 4) for k, v in observer.seconds.items()}
    seconds["report"] = round(time.perf_counter() - started, 4)
    return PictureReport(
        film_crop=_film_crop(crops, lengths, [0, 0, sw, sh]),
        shot_crops=crops,
        bars=bars,
        watermark=watermark,
        shot_quality=qualities,
        shot_flags=flags,
        seconds=seconds,
    )


def analyse_film(
    path: str | Path,
    probe: FilmProbe,
    shots_cfg: ShotsConfig,
    analysis_cfg: AnalysisConfig,
    picture_cfg: PictureConfig,
) -> tuple[ShotDetection, PictureReport]:
    """Detect the shots of ``path`` and, off the same decode, its picture report. With
    ``picture_cfg.enabled`` off the shot decode runs alone and the report says so (``ran``
    False): whole-frame crops, no logo, no measures, no flags."""
    if not picture_cfg.enabled:
        detection = detect_shots(path, probe, shots_cfg, analysis_cfg)
        whole, n = [0, 0, probe.width, probe.height], len(detection.shots)
        crops, quality = [list(whole) for _ in range(n)], [{} for _ in range(n)]
        empty = PictureReport(whole, crops, [None] * n, None, quality, [[] for _ in range(n)])
        empty.ran = False
        return detection, empty
    w, h = analysis_size(probe, analysis_cfg)
    detection = detect_shots(
        path, probe, shots_cfg, analysis_cfg, observe=ObserverFactory(w, h, picture_cfg)
    )
    parts = detection.observed
    observer, cells, motion = PictureObserver.merged(parts)
    detection.observed = []  # the statistics live on in the report, not on the detection
    shots = [(s.start_frame, s.end_frame) for s in detection.shots]
    size = (probe.width, probe.height)
    report = picture_report(observer, cells, motion, shots, size, probe.fps)
    report.parts = len(parts)
    return detection, report
