"""From a sample record to training geometry: which clip frames each shot shows at the
training rate, the crop of a frame into its bucket, and where a subject's box lands in it.
Pure arithmetic on the record: the decoding is in ``data.py``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from muss_builder.samples.records import Sample, SampleShot
from muss_builder.train.types import Box

Bucket = tuple[int, int]  # (height, width) in pixels


def resampled_frames(start: int, end: int, clip_fps: float, fps: float) -> list[int]:
    """Clip frames a shot ``[start, end)`` shows at the training rate, on its own timeline.

    Each shot is resampled from its own first frame, so no training frame of a shot can show
    a frame of the next one: the cut stays exactly between two shots.
    """
    step = clip_fps / fps
    n = max(0, math.ceil((end - start) / step - 1e-9))
    return [start + math.floor(j * step + 1e-9) for j in range(n)]


def largest_4k1(n: int, cap: int) -> int:
    """The largest ``4k + 1 <= min(n, cap)``, or 0 when ``n`` is 0."""
    m = min(n, cap)
    return 0 if m < 1 else (m - 1) // 4 * 4 + 1


def nearest_bucket(width: int, height: int, buckets: Sequence[Bucket]) -> Bucket:
    """The bucket whose aspect is nearest (in log ratio) the frame's; the first on a tie."""
    aspect = math.log(width / height)
    return min(buckets, key=lambda b: abs(math.log(b[1] / b[0]) - aspect))


@dataclass(frozen=True)
class Crop:
    """Scale a frame to cover the bucket, keeping aspect, then cut the bucket out centred."""

    scaled: tuple[int, int]  # (width, height) the frame is scaled to
    offset: tuple[int, int]  # (x, y) of the cut in the scaled frame
    size: tuple[int, int]  # (width, height) of the cut: the bucket

    @classmethod
    def plan(cls, width: int, height: int, bucket: Bucket) -> Crop:
        bucket_h, bucket_w = bucket
        scale = max(bucket_w / width, bucket_h / height)
        scaled_w = max(bucket_w, round(width * scale))
        scaled_h = max(bucket_h, round(height * scale))
        offset = ((scaled_w - bucket_w) // 2, (scaled_h - bucket_h) // 2)
        return cls((scaled_w, scaled_h), offset, (bucket_w, bucket_h))

    def box(self, box: Sequence[float]) -> Box | None:
        """A normalised box of the source frame in the cut; None if nothing of it is left."""
        (sw, sh), (ox, oy), (w, h) = self.scaled, self.offset, self.size

        def clip(v: float) -> float:
            return min(1.0, max(0.0, v))

        x0, y0, x1, y1 = (float(v) for v in box)
        out = (
            clip((x0 * sw - ox) / w),
            clip((y0 * sh - oy) / h),
            clip((x1 * sw - ox) / w),
            clip((y1 * sh - oy) / h),
        )
        return out if out[2] > out[0] and out[3] > out[1] else None

    def cut(self, image: np.ndarray) -> np.ndarray:
        (ox, oy), (w, h) = self.offset, self.size
        return image[oy : oy + h, ox : ox + w]


@dataclass
class PlannedShot:
    index: int  # in the sample json's shots
    film_shot: int
    frames: list[int]  # clip frame shown by each training frame (4k + 1 of them)


def plan_shots(
    record: Sample,
    fps: float,
    frames_max: int,
    frames_min: int,
    max_shots: int,
    stats: Counter[str],
) -> list[PlannedShot]:
    """Usable shots of a sample, each resampled to ``fps`` and trimmed (centred) to 4k+1
    frames, at most ``frames_max``; a shot left with under ``frames_min`` is dropped, and
    shots past ``max_shots`` too (each counted in ``stats``)."""
    clip_fps = float(record.clip.fps)
    planned = []
    for i, shot in enumerate(record.shots):
        start, end = shot.clip_start_frame, shot.clip_end_frame
        if not 0 <= start < end <= record.clip.n_frames:
            raise ValueError(f"shot {i}: clip frames [{start}, {end}) outside the clip")
        frames = resampled_frames(start, end, clip_fps, fps)
        n = largest_4k1(len(frames), frames_max)
        if n < frames_min:
            stats["shots_dropped_short"] += 1
            continue
        first = (len(frames) - n) // 2  # the middle: away from transitions at either end
        planned.append(PlannedShot(i, shot.film_shot_index, frames[first : first + n]))
    if len(planned) > max_shots:
        stats["shots_dropped_beyond_max"] += len(planned) - max_shots
        planned = planned[:max_shots]
    return planned


def target_box(
    sample_shot: SampleShot, subject: str, shot: PlannedShot, crop: Crop
) -> tuple[Box, int] | None:
    """The subject's box in the shot (through the crop) and the kept frame nearest the frame
    it was measured on (index into the shot's training frames); None without a usable box."""
    best: tuple[int, Box, int] | None = None
    for entry in sample_shot.subjects:
        if entry.id != subject:
            continue
        for measured in entry.boxes:
            box = crop.box(measured.box)
            if box is None:
                continue
            distances = [abs(f - measured.clip_frame) for f in shot.frames]
            local = int(np.argmin(distances))
            if best is None or distances[local] < best[0]:
                best = (distances[local], box, local)
    return None if best is None else (best[1], best[2])
