"""Lighting of a shot, measured from its keyframes (no model involved).

Part of the measured shot facts (``facts.py`` says why they are measured, not asked).

    Mean luma (Rec. 601), its standard deviation, and mean HSV saturation, averaged over the
    keyframes. Saturation skips near-black pixels (value under 8 %), whose HSV saturation is
    noise: ``(max - min) / max`` is large for any dark pixel with a little colour noise, which
    would make every night shot look vivid. Colour balance is the mean CIELAB (a*, b*)
    projected on the warm-cool axis (orange <-> blue, along which tungsten and daylight white
    balance differ); a cast stronger than ``5`` Lab units is ``warm``/``cool``, else a frame
    with little saturation is ``desaturated``, else ``neutral``. Key is from mean luma:
    ``low_key`` under 0.30, ``high_key`` over 0.60. Time of day is a guess from the same
    numbers: dark (luma < 0.25) with low saturation or a blue cast (the look of moonlight and
    day-for-night grading) is ``night``; bright (luma > 0.40) is ``day``; anything else, such
    as a dark warm candle-lit room, is ``unknown``. A brightly lit interior at night reads as
    day: the captioner should treat it as a hint, not a fact.

"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

LOW_KEY_BELOW = 0.30  # mean luma
HIGH_KEY_ABOVE = 0.60
CAST_LAB = 5.0  # |warmth| in Lab units that is a visible colour cast
DESATURATED_BELOW = 0.12  # mean HSV saturation
NIGHT_LUMA_BELOW = 0.25
NIGHT_SATURATION_BELOW = 0.25
DAY_LUMA_ABOVE = 0.40
_BLACK_VALUE = 0.08  # HSV value under which saturation is noise
# The warm-cool direction in the (a*, b*) plane: mostly yellow-blue (b*) with some red (a*),
# the way the white balance moves between tungsten (orange) and daylight/shade (blue).
_WARM_AXIS = np.array([0.35, 1.0]) / math.hypot(0.35, 1.0)


@dataclass(frozen=True)
class Lighting:
    brightness: float  # mean luma, 0..1
    contrast: float  # std of luma, 0..1
    saturation: float  # mean HSV saturation of the non-black pixels, 0..1
    colour: str  # "warm" | "cool" | "neutral" | "desaturated"
    key: str  # "low_key" | "normal" | "high_key"
    time_of_day: str  # "day" | "night" | "unknown" (a guess)

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class _ImageStats:
    luma: float
    luma_std: float
    saturation: float
    warmth: float  # Lab units along _WARM_AXIS: positive = orange, negative = blue


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected a non-empty uint8 image, got {image.dtype} {image.shape}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] != 3:
        raise ValueError(f"expected 3 channels (BGR), got {image.shape}")
    return image


def _image_stats(image: np.ndarray) -> _ImageStats:
    bgr = _as_bgr(image)
    luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float64) / 255.0
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    lit = hsv[..., 2] >= _BLACK_VALUE * 255
    saturation = float(hsv[..., 1][lit].mean()) / 255.0 if lit.any() else 0.0
    # float input gives Lab in its real units (a*, b* about -128..127), not the uint8 offsets
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    mean_ab = lab[..., 1:].reshape(-1, 2).mean(axis=0)
    return _ImageStats(
        luma=float(luma.mean()),
        luma_std=float(luma.std()),
        saturation=saturation,
        warmth=float(mean_ab @ _WARM_AXIS),
    )


def _colour(saturation: float, warmth: float) -> str:
    # a cast names the colour even when weak in saturation (a blue-toned night, a sepia look);
    # only an image with neither cast nor saturation is desaturated
    if warmth >= CAST_LAB:
        return "warm"
    if warmth <= -CAST_LAB:
        return "cool"
    return "desaturated" if saturation < DESATURATED_BELOW else "neutral"


def _key(brightness: float) -> str:
    if brightness < LOW_KEY_BELOW:
        return "low_key"
    return "high_key" if brightness > HIGH_KEY_ABOVE else "normal"


def _time_of_day(brightness: float, saturation: float, warmth: float) -> str:
    if brightness < NIGHT_LUMA_BELOW and (
        saturation < NIGHT_SATURATION_BELOW or warmth <= -CAST_LAB
    ):
        return "night"
    return "day" if brightness > DAY_LUMA_ABOVE else "unknown"


def lighting(images: list[np.ndarray]) -> Lighting:
    """Lighting of a shot from its keyframes; each keyframe counts equally, whatever its size."""
    if not images:
        raise ValueError("lighting needs at least one image")
    stats = [_image_stats(image) for image in images]
    brightness = float(np.mean([s.luma for s in stats]))
    contrast = float(np.mean([s.luma_std for s in stats]))
    saturation = float(np.mean([s.saturation for s in stats]))
    warmth = float(np.mean([s.warmth for s in stats]))
    return Lighting(
        brightness=brightness,
        contrast=contrast,
        saturation=saturation,
        colour=_colour(saturation, warmth),
        key=_key(brightness),
        time_of_day=_time_of_day(brightness, saturation, warmth),
    )
