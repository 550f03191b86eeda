"""Curation of one film: what rides the keyframe decode, and the verdict on every shot.

The measurements come from three places the pipeline already reads (no extra decode): the
analysis frames of the shot decode (``curation.picture``: crop, logo, black, static, flash),
the keyframe pass (``curation.keyframe_quality``: text, credits, blur;
``curation.duplicates``: fingerprints; ``curation.model_filters``: aesthetics, consistency)
and the build-wide duplicate registry. ``decide`` merges them per shot: every measurement
into ``quality``, every flag into ``flags``, and the first flag of the config's ``drop`` list
(in ``filters.DROPPING_FLAGS`` order) becomes the reason the shot is in no sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from muss_builder.captions.collector import ShotPixels
from muss_builder.captions.records import WindowCaptions
from muss_builder.config import PipelineConfig
from muss_builder.core.models import loaded_model
from muss_builder.curation.duplicates import (
    FilmDuplicates,
    ShotFingerprintCollector,
    ShotFingerprints,
    make_embedder,
)
from muss_builder.curation.examples import ShotThumbCollector
from muss_builder.curation.keyframe_quality import (
    KeyframeQualityCollector,
    KeyframeQualityReport,
    load_text_detector,
)
from muss_builder.curation.model_filters import (
    ModelFilterCollector,
    ShotModelQuality,
    caption_alignment,
    load_model_filters,
    misaligned,
    model_filter_plan,
)
from muss_builder.curation.picture import PictureReport
from muss_builder.filters import FiltersConfig
from muss_builder.filters.duplicates import DuplicatesConfig
from muss_builder.media.probe import FilmProbe
from muss_builder.samples.picture_plan import even_box, keyframe_boxes, plan_picture
from muss_builder.samples.verdicts import Box, FilmCuration
from muss_builder.shots.segment import Shot, ShotDetection
from muss_builder.subjects.stage import FilmSubjects


@dataclass
class KeyframeReports:
    """What the curation collectors of the keyframe pass found (None: that filter is off)."""

    keyframes: KeyframeQualityReport | None = None
    fingerprints: ShotFingerprints | None = None
    models: dict[int, ShotModelQuality] | None = None
    thumbs: dict[int, bytes] | None = None  # per shot, for the report's drop examples
    seconds: dict[str, float] = field(default_factory=dict)


def load_curation_models(config: PipelineConfig) -> None:
    """Load what the curation collectors run (the text detector, the duplicate embedder, the
    model filters) for this process's films: a model or package that is missing raises here,
    in the stage's setup, so the build stops before any film."""
    f = config.filters
    if not f.enabled:
        return
    load_text_detector(f.keyframes)
    if f.duplicates.enabled:
        duplicate_embedder(f.duplicates)
    load_model_filters(f.models)


def duplicate_embedder(config: DuplicatesConfig) -> Any:
    """The duplicate filter's image model, set up once per process (None: pixels only)."""
    if config.embedder == "pixels":
        return None

    def load() -> Any:
        embedder = make_embedder(config)
        embedder.setup()
        return embedder

    return loaded_model(f"duplicates-embedder:{config.embedder}:{config.device}", load)


def start_curation(
    picture: PictureReport | None, probe: FilmProbe, detection: ShotDetection, cfg: FiltersConfig
) -> FilmCuration:
    """The film's curation after the analysis decode: crops, the logo, picture measures."""
    whole = [0, 0, probe.width, probe.height]
    n = len(detection.shots)
    if picture is None:
        curation = plan_picture(whole, [whole] * n, None, probe, cfg)
        curation.not_run["picture"] = "off (filters.picture.enabled: false)"
        return curation
    mark = picture.watermark
    curation = plan_picture(
        picture.film_crop,
        picture.shot_crops,
        (mark.box, mark.score) if mark is not None else None,
        probe,
        cfg,
    )
    for i, verdict in curation.shots.items():
        verdict.quality = dict(picture.shot_quality[i])
        verdict.flags = sorted(picture.shot_flags[i])
    return curation


def keyframe_collectors(
    detection: ShotDetection, curation: FilmCuration, probe: FilmProbe, config: PipelineConfig
) -> tuple[dict[str, Any], dict[int, Box]]:
    """The curation collectors that ride the keyframe pass, by name, and the keyframe crop of
    each shot (keyframe pixels; shots shown whole are left out). Each collector is told the
    logo box of each shot in the pixels of its cut keyframes, so a logo never reads as text,
    an edge of the blur measure or a fingerprint."""
    f = config.filters
    crops, logos = keyframe_boxes(curation, probe, config.subjects.keyframe_max_side)
    collectors: dict[str, Any] = {}
    if f.keyframes.text.enabled or f.keyframes.blur.enabled:
        collectors["keyframes"] = KeyframeQualityCollector(
            detection.shots, f.keyframes, logos, load_text_detector(f.keyframes)
        )
    if f.duplicates.enabled:
        collectors["fingerprints"] = ShotFingerprintCollector(
            detection.shots, f.duplicates, logos, duplicate_embedder(f.duplicates)
        )
    running, _ = model_filter_plan(f.models, captions=config.captions.enabled)
    if {"aesthetic", "consistency"} & set(running):
        collectors["models"] = ModelFilterCollector(detection.shots, f.models)
    if f.enabled:
        collectors["thumbs"] = ShotThumbCollector(detection.shots)
    return {name: TimedCollector(c) for name, c in collectors.items()}, crops


class TimedCollector:
    """A keyframe-pass collector whose every call is timed: what each filter costs a film."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def _timed(self, call: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.seconds += time.perf_counter() - started

    def wanted(self) -> dict[int, list[int]]:
        return self._timed(self.inner.wanted)

    def add(self, keyframe: Any, is_keyframe: bool) -> None:
        self._timed(self.inner.add, keyframe, is_keyframe)

    def finish(self) -> Any:
        return self._timed(self.inner.finish)


def finish_collectors(collectors: dict[str, Any]) -> KeyframeReports:
    """Each collector's result, and its seconds (``keyframes``, ``fingerprints``, ...)."""
    reports = KeyframeReports(**{name: c.finish() for name, c in collectors.items()})
    reports.seconds = {
        name: c.seconds for name, c in collectors.items() if isinstance(c, TimedCollector)
    }
    # the text detector on its own thread: its time is not in the pass's ("keyframes" is then
    # what the pass waited for it), so it is reported apart
    if reports.keyframes is not None and reports.keyframes.text_thread_seconds:
        reports.seconds["keyframes_text_thread"] = reports.keyframes.text_thread_seconds
    return reports


def not_run(config: PipelineConfig, reports: KeyframeReports) -> dict[str, str]:
    """Every filter that did not run on this film, and the plain reason."""
    f = config.filters
    out: dict[str, str] = {}
    if reports.keyframes is not None:
        out |= {f"keyframes.{k}": v for k, v in reports.keyframes.not_run.items()}
    else:
        out["keyframes"] = "off (filters.keyframes.text and .blur disabled)"
    if not f.duplicates.enabled:
        out["duplicates"] = "off (filters.duplicates.enabled: false)"
    out |= model_filter_plan(f.models, captions=config.captions.enabled)[1]
    return dict(sorted(out.items()))


def _subtitle_crop(curation: FilmCuration, shot: int, band: dict) -> None:
    """A subtitle shot kept with its text band cut away: its crop shrinks to the part the
    keyframe filter keeps (fractions of the shot's crop)."""
    crop = curation.shots[shot].crop
    w, h = crop[2] - crop[0], crop[3] - crop[1]
    fx0, fy0, fx1, fy1 = band["keep_frac"]
    kept = [crop[0] + fx0 * w, crop[1] + fy0 * h, crop[0] + fx1 * w, crop[1] + fy1 * h]
    inward = [int(-(-kept[0] // 1)), int(-(-kept[1] // 1)), int(kept[2]), int(kept[3])]
    curation.shots[shot].crop = even_box(inward, crop[2], crop[3])


def decide(
    curation: FilmCuration,
    reports: KeyframeReports,
    duplicates: FilmDuplicates | None,
    config: PipelineConfig,
) -> None:
    """Merge every report into each shot's verdict and name what drops it (in place)."""
    drop = config.filters.drop
    similarity = {}
    if duplicates is not None and reports.fingerprints is not None:
        similarity = dict(zip(reports.fingerprints.shots, duplicates.shot_similarity, strict=False))
    for i, verdict in curation.shots.items():
        flags = set(verdict.flags)
        kq = reports.keyframes.shots.get(i) if reports.keyframes else None
        if kq is not None:
            verdict.quality |= kq.quality
            flags |= set(kq.flags)
            if kq.text_band is not None and kq.text_band.get("action") == "crop":
                _subtitle_crop(curation, i, kq.text_band)
        mq = reports.models.get(i) if reports.models else None
        if mq is not None:
            verdict.quality |= mq.quality
            flags |= set(mq.flags)
        if i in similarity:
            verdict.quality["duplicate_similarity"] = float(similarity[i])
        match = duplicates.shot_matches.get(i) if duplicates else None
        if match is not None:
            flags.add("duplicate")
            verdict.duplicate_of = (match[0], int(match[1]))
        verdict.flags = sorted(flags)
        verdict.dropped_by = next((f for f in drop if f in flags), None)
    if duplicates is not None and duplicates.film_duplicate_of and "duplicate" in drop:
        # another rip of an earlier input: the film as a whole is the copy
        curation.duplicate_of = duplicates.film_duplicate_of
        for verdict in curation.shots.values():
            verdict.dropped_by = verdict.dropped_by or "duplicate"
    curation.not_run = dict(sorted((curation.not_run | not_run(config, reports)).items()))


def shot_seconds(detection: ShotDetection, fingerprints: ShotFingerprints) -> list[float]:
    """Each fingerprinted shot's length, in the fingerprints' order (the registry weighs a
    whole-film duplicate by footage)."""
    return [detection.shots[i].duration_seconds for i in fingerprints.shots]


def cut_detections(subjects: FilmSubjects | None, curation: FilmCuration, before: dict) -> None:
    """Boxes of a shot whose crop shrank after the keyframe pass (a subtitle band cut away)
    follow the new picture: moved, clipped, and dropped when nothing of them is left.
    ``before``: shot -> its crop when the keyframes were cut."""
    if subjects is None:
        return
    kept = []
    for d in subjects.detections:
        old, verdict = before.get(d.shot), curation.shots.get(d.shot)
        new = verdict.crop if verdict is not None else None
        if old is None or new is None or old == new:
            kept.append(d)
            continue
        w, h = d.image_size
        sx, sy = w / (old[2] - old[0]), h / (old[3] - old[1])
        ox, oy = (new[0] - old[0]) * sx, (new[1] - old[1]) * sy
        nw, nh = round((new[2] - new[0]) * sx), round((new[3] - new[1]) * sy)
        x0, y0 = max(0.0, d.box[0] - ox), max(0.0, d.box[1] - oy)
        x1, y1 = min(float(nw), d.box[2] - ox), min(float(nh), d.box[3] - oy)
        if x1 <= x0 or y1 <= y0:
            continue
        d.box, d.image_size = (x0, y0, x1, y1), (nw, nh)
        kept.append(d)
    subjects.detections[:] = kept


def alignment_runs(config: PipelineConfig) -> bool:
    """Whether caption-frame alignment runs on this build (after captioning)."""
    if not config.filters.enabled:
        return False
    running, _ = model_filter_plan(config.filters.models, captions=config.captions.enabled)
    return "alignment" in running


def check_alignment(
    curation: FilmCuration,
    windows: list[list[Shot]],
    captions: list[WindowCaptions | None],
    pixels: dict[int, ShotPixels],
    config: PipelineConfig,
) -> list[bool]:
    """Per window, whether it stays: each shot's caption against its keyframes (the cut
    keyframes the captioner was shown) gives ``alignment`` in the shot's quality; a window
    whose worst shot is under the threshold is ``misaligned`` (every shot of it flagged, and
    dropped when the flag is in ``drop``)."""
    models = config.filters.models
    keep = []
    for shots, window in zip(windows, captions, strict=True):
        images = [list(pixels[s.index].images) for s in shots]  # JPEGs the VLM is shown
        if window is None or any(not shot for shot in images):
            keep.append(True)  # nothing to compare: the filter says nothing
            continue
        scores = caption_alignment(models, images, [c.text for c in window.shots])
        bad = misaligned(models, scores)
        for shot, score in zip(shots, scores, strict=True):
            verdict = curation.shots[shot.index]
            verdict.quality["alignment"] = float(score)
            if bad:
                verdict.flags = sorted({*verdict.flags, "misaligned"})
                if "misaligned" in config.filters.drop:
                    verdict.dropped_by = verdict.dropped_by or "misaligned"
        keep.append(not (bad and "misaligned" in config.filters.drop))
    return keep
