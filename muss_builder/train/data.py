"""Our shard samples as training clips: ``DataConfig`` and ``ShardClipDataset``.

A sample (mp4 + json + the refs.jpg strip of reference crops) becomes a ``ClipExample``: each
usable shot is resampled to the training fps on its own timeline and trimmed to 4k+1 frames,
the clip is scaled and centre-cut to the bucket nearest its aspect, subject boxes are carried
through the cut, and reference crops are placed on the shots they target.

Reading, the rank/worker split, shuffling, shape batching, exact resume and the ``on_error``
handlers are generic and live in ``muss_builder.train.stream`` (the shard list in
``train.shard_list``, ``ResumableLoader`` in ``train.loader``).
One sample serves both tracks (docs/layout.md): with "subject" in ``tracks`` a sample whose
json lists "subject" is read with its references; with ``tracks: [subject]`` only such
samples are read; with ``tracks: [montage]`` every sample serving montage is read without
references (a subject window is skipped). Given a packed folder, a one-track run opens only
the shards of the families serving its track (``train.feed.expand_shards``).
Samples skipped on purpose (track not wanted, too few usable shots, a film in
``exclude_film_ids``: see ``ShardStream``) are counted in
``stats`` (summed over the loader's workers) and logged at INFO.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from muss_builder.samples.records import Sample, validation_reason
from muss_builder.shards.reader import ShardFormatError, ShardSample, load_sample_json
from muss_builder.train.pixels import decode_frames, member_error, reference_images
from muss_builder.train.shard_list import check_film_ids
from muss_builder.train.shot_plan import (
    Bucket,
    Crop,
    PlannedShot,
    nearest_bucket,
    plan_shots,
    target_box,
)
from muss_builder.train.stream import OnError, ShardStream, raise_error
from muss_builder.train.types import ClipExample, ReferenceCrop

__all__ = [
    "PIXEL_MULTIPLE",
    "TINY_BUCKETS",
    "WAN_BUCKETS",
    "Bucket",
    "DataConfig",
    "ShardClipDataset",
    "clip_example",
    "references",
]

log = logging.getLogger(__name__)

# Wan's VAE downsamples 8x and a DiT patch is 2x2 latents: 16 pixels per token side.
PIXEL_MULTIPLE = 16
WAN_BUCKETS: list[Bucket] = [(480, 832), (832, 480), (512, 512)]
TINY_BUCKETS: list[Bucket] = [(32, 32), (32, 48), (48, 32)]  # tests and smoke runs on CPU


class DataConfig(BaseModel):
    """How shard samples become training clips (strict: unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float = Field(16.0, gt=0, description="training frame rate; shots are resampled to it")
    buckets: list[Bucket] = Field(
        default_factory=lambda: list(WAN_BUCKETS),
        description="(height, width) sizes; a clip goes to the one nearest its aspect",
    )
    min_shots: int = Field(1, ge=1, description="samples with fewer usable shots are skipped")
    max_shots: int = Field(5, ge=1, description="shots after this many are dropped")
    frames_per_shot_max: int = Field(33, ge=1, description="4k+1: longer shots are trimmed")
    min_frames_per_shot: int = Field(5, ge=1, description="4k+1: shorter shots are dropped")
    ref_size: int = Field(256, ge=PIXEL_MULTIPLE, description="reference crops: square pixels")
    max_references: int = Field(4, ge=0, description="reference crops per clip (0 = none)")
    shuffle_buffer: int = Field(64, ge=0, description="0 = no shuffling at all (shards in order)")
    seed: int = 0
    tracks: list[Literal["montage", "subject"]] = Field(
        default_factory=lambda: ["montage", "subject"], min_length=1
    )
    exclude_film_ids: list[str] = Field(
        default_factory=list,
        description="films never trained on (a benchmark suite's held-out films: --holdout)",
    )

    @field_validator("exclude_film_ids")
    @classmethod
    def _check_film_ids(cls, value: list[str]) -> list[str]:
        return check_film_ids(value)  # sorted: the same set always gives the same config

    @field_validator("buckets", mode="before")
    @classmethod
    def _parse_buckets(cls, value: Any) -> Any:
        # YAML users write "480x832"; code passes (480, 832)
        if isinstance(value, list):
            return [
                tuple(int(v) for v in b.lower().split("x")) if isinstance(b, str) else b
                for b in value
            ]
        return value

    @field_validator("buckets")
    @classmethod
    def _check_buckets(cls, value: list[Bucket]) -> list[Bucket]:
        if not value:
            raise ValueError("at least one bucket is needed")
        for height, width in value:
            if height <= 0 or width <= 0 or height % PIXEL_MULTIPLE or width % PIXEL_MULTIPLE:
                raise ValueError(
                    f"bucket {height}x{width}: sides must be positive multiples of "
                    f"{PIXEL_MULTIPLE} (VAE stride 8 x patch 2)"
                )
        return value

    @field_validator("frames_per_shot_max", "min_frames_per_shot")
    @classmethod
    def _check_4k1(cls, value: int) -> int:
        if value % 4 != 1:
            raise ValueError(f"{value} is not 4k+1 (the causal VAE encodes 1 + 4k frames)")
        return value

    @field_validator("ref_size")
    @classmethod
    def _check_ref_size(cls, value: int) -> int:
        if value % PIXEL_MULTIPLE:
            raise ValueError(f"ref_size {value} is not a multiple of {PIXEL_MULTIPLE}")
        return value

    @model_validator(mode="after")
    def _check_ranges(self) -> DataConfig:
        if self.min_shots > self.max_shots:
            raise ValueError(f"min_shots {self.min_shots} > max_shots {self.max_shots}")
        if self.min_frames_per_shot > self.frames_per_shot_max:
            raise ValueError(
                f"min_frames_per_shot {self.min_frames_per_shot} > "
                f"frames_per_shot_max {self.frames_per_shot_max}"
            )
        return self


class ShardClipDataset(ShardStream):
    """ClipExamples from our shards (``batch_size``: lists of same-shape ClipExamples)."""

    def __init__(
        self,
        shards: Sequence[str | Path] | str | Path,
        config: DataConfig,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
        on_error: OnError = raise_error,
    ) -> None:
        super().__init__(
            shards,
            seed=config.seed,
            shuffle_buffer=config.shuffle_buffer,
            rank=rank,
            world_size=world_size,
            batch_size=batch_size,
            drop_last=drop_last,
            on_error=on_error,
            exclude_film_ids=config.exclude_film_ids,
            tracks=config.tracks,
        )
        self.config = config

    def decode(self, sample: ShardSample) -> ClipExample | None:
        return clip_example(sample, self.config, self.stats)

    def shape_key(self, item: ClipExample) -> tuple[int, ...]:
        return tuple(item.video.shape)


# ---- one shard sample -> one ClipExample ------------------------------------------------------


def references(
    sample: ShardSample,
    record: Sample,
    shots: list[PlannedShot],
    starts: list[int],
    crop: Crop,
    cfg: DataConfig,
    stats: Counter[str],
) -> list[ReferenceCrop]:
    """One ReferenceCrop per (reference, kept target shot), in the json's order."""
    by_film_shot = {shot.film_shot: k for k, shot in enumerate(shots)}
    placed: list[tuple[int, int, list[float], int, str]] = []  # (ref, shot, box, frame, id)
    for n, ref in enumerate(record.references):
        for target in ref.target_shots:
            k = by_film_shot.get(target)
            if k is None or target == ref.source_shot:
                stats["references_target_not_kept"] += 1  # dropped shot (or a bad json)
                continue
            where = target_box(record.shots[shots[k].index], ref.subject, shots[k], crop)
            if where is None:
                stats["references_without_box"] += 1
                continue
            if len(placed) >= cfg.max_references:
                stats["references_over_max"] += 1
                continue
            box, local = where
            placed.append((n, k, box, starts[k] + local, ref.subject))
    # only the crops used are cut from the strip (decoded once, when one is used)
    used = sorted({n for n, *_ in placed})
    images = reference_images(sample, [record.references[n].strip_box for n in used], cfg.ref_size)
    image_of = dict(zip(used, images, strict=True))
    return [ReferenceCrop(image_of[n], k, box, frame, sid) for n, k, box, frame, sid in placed]


def clip_example(sample: ShardSample, cfg: DataConfig, stats: Counter[str]) -> ClipExample | None:
    """Decode one shard sample; None (counted in ``stats``) when it is not used."""
    try:
        record = Sample.model_validate(load_sample_json(sample))
    except ValidationError as exc:
        raise member_error(
            sample, "json", f"not a sample record: {validation_reason(exc)}"
        ) from exc
    try:
        # the subject view when wanted and served; else the montage view (no references)
        subject_view = "subject" in cfg.tracks and "subject" in record.tracks
        montage_view = "montage" in cfg.tracks and "montage" in record.tracks
        if not (subject_view or montage_view):  # e.g. a subject window, montage wanted
            stats["skipped_track"] += 1
            return None
        shots = plan_shots(
            record, cfg.fps, cfg.frames_per_shot_max, cfg.min_frames_per_shot, cfg.max_shots, stats
        )
        if len(shots) < cfg.min_shots:
            stats["skipped_too_few_shots"] += 1
            log.info(
                "%s: %d usable shots < min_shots %d, skipped", sample.key, len(shots), cfg.min_shots
            )
            return None
        width, height = record.clip.width, record.clip.height
        crop = Crop.plan(width, height, nearest_bucket(width, height, cfg.buckets))
        starts = np.cumsum([0] + [len(s.frames) for s in shots]).tolist()
        frames = decode_frames(sample, crop, {f for s in shots for f in s.frames})
        refs = (
            references(sample, record, shots, starts[:-1], crop, cfg, stats) if subject_view else []
        )
        kept = [record.shots[s.index] for s in shots]
        boxes = [[b for e in d.subjects for m in e.boxes if (b := crop.box(m.box))] for d in kept]
        captions = [d.caption for d in kept]
        global_caption = record.global_caption
    except ShardFormatError:
        raise
    except ValueError as exc:  # a shot outside the clip: the record is typed, yet inconsistent
        raise member_error(sample, "json", f"unexpected sample metadata: {exc!r}") from exc
    pixels = np.stack([frames[f] for s in shots for f in s.frames])
    video = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    stats["samples"] += 1
    stats["references"] += len(refs)
    return ClipExample(
        key=sample.key,
        video=video,
        shot_frames=list(itertools.pairwise(starts)),
        global_caption=global_caption,
        shot_captions=captions,
        references=refs,
        subject_boxes=boxes,
        fps=cfg.fps,
    )
