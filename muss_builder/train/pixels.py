"""The pixels of a training example: the clip's frames decoded and cut to the bucket's crop
(``shot_plan.Crop``) and the reference crops squared, for the dataset (train/data.py) and
the sampler."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from muss_builder.core.naming import REFS_MEMBER
from muss_builder.media.decode import read_frames
from muss_builder.media.tools import MediaError
from muss_builder.samples.ref_strip import StripError, reference_crops
from muss_builder.shards.reader import ShardFormatError, ShardSample
from muss_builder.train.shot_plan import Crop


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


def reference_images(sample: ShardSample, boxes: list[list[int]], size: int) -> list[torch.Tensor]:
    """The sample's reference crops, cut from its ``refs.jpg`` strip by their ``strip_box``
    (in order), each padded to a square (mid grey, so nothing is cut or stretched), resized
    to ``size``, as (3, size, size) in [-1, 1]. The strip is decoded once."""
    if not boxes:
        return []
    data = sample.members.get(REFS_MEMBER)
    if data is None:
        raise member_error(sample, REFS_MEMBER, "missing (the sample's reference strip)")
    try:
        crops = reference_crops(data, boxes)
    except StripError as exc:
        raise member_error(sample, REFS_MEMBER, str(exc)) from exc
    return [square_reference(crop, size) for crop in crops]


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
