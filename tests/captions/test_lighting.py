"""Lighting facts from tinted textures and real photographs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_camera import texture

from muss_builder.captions.lighting import lighting


def grey_texture() -> np.ndarray:
    grey = cv2.cvtColor(texture()[:216, :384], cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR).astype(np.float32)


def tint(
    gain_bgr: tuple[float, float, float], offset_bgr: tuple[float, float, float]
) -> np.ndarray:
    return np.clip(grey_texture() * np.array(gain_bgr) + np.array(offset_bgr), 0, 255).astype(
        np.uint8
    )


def test_bright_warm_day() -> None:
    light = lighting([tint((0.55, 0.85, 1.15), (60, 60, 60))])  # orange, lifted
    assert (light.colour, light.key, light.time_of_day) == ("warm", "high_key", "day")
    assert light.brightness > 0.6


def test_dark_blue_night() -> None:
    light = lighting([tint((0.35, 0.25, 0.2), (15, 5, 0))])  # moonlight blue, dark
    assert (light.colour, light.key, light.time_of_day) == ("cool", "low_key", "night")
    assert light.brightness < 0.2


def test_dark_desaturated_night() -> None:
    """No cast at all: dark and colourless reads as night too."""
    light = lighting([tint((0.3, 0.3, 0.3), (0, 0, 0))])
    assert (light.colour, light.key, light.time_of_day) == ("desaturated", "low_key", "night")


def test_dark_warm_is_not_a_guess() -> None:
    """Candle light: dark but warm and saturated, which could be any hour."""
    light = lighting([tint((0.05, 0.2, 0.45), (0, 5, 20))])
    assert (light.colour, light.key, light.time_of_day) == ("warm", "low_key", "unknown")


def test_grey_is_desaturated() -> None:
    light = lighting([np.full((90, 160, 3), 128, np.uint8)])
    assert light.saturation == 0.0
    assert light.contrast == 0.0
    assert light.brightness == pytest.approx(128 / 255)
    assert (light.colour, light.key) == ("desaturated", "normal")


def test_colourful_but_balanced_is_neutral() -> None:
    light = lighting([texture()[:216, :384]])  # random colours average to grey
    assert light.saturation > 0.2
    assert light.colour == "neutral"


def test_lighting_averages_keyframes() -> None:
    white, black = np.full((10, 10, 3), 255, np.uint8), np.zeros((40, 40, 3), np.uint8)
    light = lighting([white, black])
    assert light.brightness == pytest.approx(0.5)  # each keyframe counts once, not per pixel
    assert light.contrast == 0.0
    assert lighting([white]).key == "high_key"
    assert lighting([black]).key == "low_key"


def test_lighting_on_real_photographs() -> None:
    data = pytest.importorskip("skimage.data")
    coffee = lighting([cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)])
    assert (coffee.colour, coffee.time_of_day) == ("warm", "day")
    rocket = lighting([cv2.cvtColor(data.rocket(), cv2.COLOR_RGB2BGR)])  # launch at dusk
    assert rocket.colour == "cool"
    assert rocket.brightness < coffee.brightness


def test_lighting_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        lighting([])
    with pytest.raises(ValueError):
        lighting([np.zeros((10, 10, 3), np.float32)])
    record = lighting([texture()[:50, :50]]).to_dict()
    assert set(record) == {"brightness", "contrast", "saturation", "colour", "key", "time_of_day"}
    assert json.loads(json.dumps(record)) == record
