"""The pixels of a training example: the bucket's crop, the clip's frames decoded and cut to
it, and the reference crops squared, for the dataset (train/data.py) and the sampler."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from muss_builder.media.decode import read_frames
from muss_builder.media.tools import MediaError
from muss_builder.shards.reader import ShardFormatError, ShardSample
from muss_builder.train.types import Box


@dataclass(frozen=True)
class Crop:
    """Scale a frame to cover the bucket, keeping aspect, then cut the bucket out centred."""

    scaled: tuple[int, int]  # (width, height) the frame is scaled to
    offset: tuple[int, int]  # (x, y) of the cut in the scaled frame
    size: tuple[int, int]  # (width, height) of the cut: the bucket

    @classmethod
    def plan(cls, width: int, height: int, bucket: tuple[int, int]) -> Crop:
        """``bucket``: (height, width), as ``train.data.Bucket``."""
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


def member_error(sample: ShardSample, member: str, reason: str) -> ShardFormatError:
    """The error for a bad member ``member`` (its extension) of ``sample``."""
    return ShardFormatError(sample.shard, sample.member_name(member), reason)


def decode_frames(sample: ShardSample, crop: Crop, wanted: set[int]) -> dict[int, np.ndarray]:
    """RGB frames ``wanted`` of the sample's clip, scaled and cut to the bucket."""
    data = sample.members.get("mp4")
    if data is None:
        raise member_error(sample, "mp4", "missing (a sample's clip)")
    try:
        decoded = read_frames(data, crop.scaled, wanted=wanted, pix_fmt="rgb24")
    except MediaError as exc:
        raise member_error(sample, "mp4", f"cannot decode: {exc}") from exc
    frames = {i: np.ascontiguousarray(crop.cut(image)) for i, image in decoded.items()}
    missing = sorted(wanted - frames.keys())
    if missing:
        raise member_error(
            sample, "mp4", f"clip ends before frame {missing[0]} that the json's shots use"
        )
    return frames


def reference_image(sample: ShardSample, member: str, size: int) -> torch.Tensor:
    """A ``.ref{k}.jpg`` crop padded to a square (mid grey, so nothing is cut or stretched),
    resized to ``size``, as (3, size, size) in [-1, 1]."""
    ext = member.removeprefix(f"{sample.key}.")
    data = sample.members.get(ext)
    if data is None:
        raise member_error(sample, ext, "listed in the json's references but not in the sample")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise member_error(sample, ext, "not a decodable image")
    return square_reference(image, size)


def square_reference(image: np.ndarray, size: int) -> torch.Tensor:
    """A BGR crop padded to a square with mid grey (nothing cut or stretched), resized to
    ``size``: (3, size, size) RGB in [-1, 1]. Training and sampling both use it."""
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    image = cv2.copyMakeBorder(
        image,
        top,
        side - h - top,
        left,
        side - w - left,
        cv2.BORDER_CONSTANT,
        value=(128, 128, 128),
    )
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    image = cv2.cvtColor(cv2.resize(image, (size, size), interpolation=interp), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0
