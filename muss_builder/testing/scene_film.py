"""Synthetic films with known scenes, for scene segmentation tests and its benchmark.

Each scene is a *place*: a painted backdrop twice the frame's size in a palette of its own
(a hue, a light level) with two people in it (coloured figures). A scene is an establishing
shot of the whole place (sometimes) and then a shot-reverse-shot exchange: set-up A frames the
left part of the place with one person, set-up B the right part with the other, and the shots
go A, B, A, B... Every shot pans slowly over its set-up (it is never a still). Between scenes
the change of place is a plain cut or a fade through black (``fade_frames`` out and in), at
random; inside a scene every change is a cut. The ground truth is exact: each shot's length,
set-up, scene, and the transition into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from muss_builder.media.h264 import H264Options, H264Writer


@dataclass(frozen=True)
class SceneFilm:
    path: Path
    fps: int
    shot_frames: tuple[int, ...]
    scene_of_shot: tuple[int, ...]
    setup_of_shot: tuple[str, ...]  # "E" establishing, "A" / "B" the two set-ups
    transition_in: tuple[str, ...]  # "start", "cut" or "fade_black"

    @property
    def breaks(self) -> list[int]:
        """First shot of every scene after the first (what a segmenter must find)."""
        return [
            i
            for i in range(1, len(self.scene_of_shot))
            if self.scene_of_shot[i] != self.scene_of_shot[i - 1]
        ]


def place_canvas(
    rng: np.random.Generator, size: tuple[int, int], hues: tuple[float, float] = (0, 180)
) -> np.ndarray:
    """A backdrop of soft blobs in one palette (hue band, saturation, light), BGR; ``hues``
    bounds the palette's hue (OpenCV's 0..180): a narrow band makes places look alike."""
    w, h = size
    hue = float(rng.uniform(*hues))
    sat, val = float(rng.uniform(80, 220)), float(rng.uniform(70, 220))
    hsv = np.zeros((h, w, 3), np.float32)
    hsv[..., 0] = hue
    hsv[..., 1] = sat
    hsv[..., 2] = val
    for _ in range(14):  # blobs of nearby hues and other light: walls, furniture, windows
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(w * 0.05, w * 0.25), rng.uniform(h * 0.05, h * 0.3)
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (int(cx), int(cy)), (int(rx), int(ry)), 0, 0, 360, 255, -1)
        m = mask > 0
        hsv[..., 0][m] = (hue + rng.uniform(-12, 12)) % 180
        hsv[..., 1][m] = np.clip(sat + rng.uniform(-60, 40), 0, 255)
        hsv[..., 2][m] = np.clip(val + rng.uniform(-60, 60), 0, 255)
    hsv = cv2.GaussianBlur(hsv, (0, 0), 3)
    noise = rng.normal(0, 6, (h, w)).astype(np.float32)
    hsv[..., 2] = np.clip(hsv[..., 2] + noise, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def _figure(canvas: np.ndarray, x: int, colour: tuple[int, int, int]) -> None:
    h = canvas.shape[0]
    cv2.ellipse(canvas, (x, int(h * 0.42)), (int(h * 0.07), int(h * 0.09)), 0, 0, 360, colour, -1)
    cv2.rectangle(canvas, (x - int(h * 0.1), int(h * 0.52)), (x + int(h * 0.1), h), colour, -1)


def _setup_box(setup: str, cw: int, ch: int) -> tuple[int, int, int, int]:
    if setup == "E":
        return 0, 0, cw, ch
    left = setup == "A"
    x0 = 0 if left else cw // 2
    return x0 + cw // 16, ch // 8, x0 + cw // 2 - cw // 16, ch - ch // 8


def render_shot(
    place: np.ndarray, setup: str, n: int, size: tuple[int, int], rng: np.random.Generator
) -> list[np.ndarray]:
    """``n`` frames of one shot: its set-up's part of the place, panning slowly."""
    x0, y0, x1, y1 = _setup_box(setup, place.shape[1], place.shape[0])
    drift = float(rng.uniform(-0.06, 0.06)) * (x1 - x0)
    frames = []
    for k in range(n):
        dx = round(drift * k / max(1, n - 1))
        bx0, bx1 = max(0, x0 + dx), min(place.shape[1], x1 + dx)
        frames.append(cv2.resize(place[y0:y1, bx0:bx1], size, interpolation=cv2.INTER_AREA))
    return frames


def _scene_plan(rng: np.random.Generator, n_places: int, fps: int) -> list[list[tuple[str, int]]]:
    plan = []
    for _ in range(n_places):
        shots = int(rng.integers(3, 7))
        setups = (["E"] if rng.random() < 0.5 else []) + ["AB"[k % 2] for k in range(shots)]
        plan.append(
            [(s, int(rng.integers(int(1.5 * fps), int(3.5 * fps)))) for s in setups[:shots]]
        )
    return plan


def make_scene_film(
    out: Path,
    n_places: int = 11,
    seed: int = 0,
    size: tuple[int, int] = (480, 270),
    fps: int = 24,
    fade_frames: int = 12,
    hues: tuple[float, float] = (0, 180),
) -> SceneFilm:
    """Write the film and return its ground truth (``hues``: see ``place_canvas``)."""
    rng = np.random.default_rng(seed)
    plan = _scene_plan(rng, n_places, fps)
    frames_out: list[np.ndarray] = []
    lengths, scenes, setups, transitions = [], [], [], []
    fades = [bool(rng.random() < 0.5) for _ in plan]
    for scene, shots in enumerate(plan):
        place = place_canvas(rng, (size[0] * 2, size[1] * 2), hues)
        # the people of this place, drawn into the backdrop at their set-ups' spots
        _figure(place, place.shape[1] // 4, tuple(int(v) for v in rng.integers(0, 255, 3)))
        _figure(place, 3 * place.shape[1] // 4, tuple(int(v) for v in rng.integers(0, 255, 3)))
        for k, (setup, n) in enumerate(shots):
            frames = render_shot(place, setup, n, size, rng)
            fade_in = k == 0 and scene > 0 and fades[scene]
            fade_out = k == len(shots) - 1 and scene + 1 < len(plan) and fades[scene + 1]
            for f in range(min(fade_frames, n)):
                if fade_in:
                    frames[f] = (frames[f] * (f / fade_frames)).astype(np.uint8)
                if fade_out:
                    frames[n - 1 - f] = (frames[n - 1 - f] * (f / fade_frames)).astype(np.uint8)
            frames_out += frames
            lengths.append(n)
            scenes.append(scene)
            setups.append(setup)
            transitions.append("start" if not lengths[:-1] else "fade_black" if fade_in else "cut")
    options = H264Options(preset="veryfast", crf=20)
    with H264Writer(out, size, fps, options, pix_fmt="bgr24") as writer:
        for frame in frames_out:
            writer.write(np.ascontiguousarray(frame))
    return SceneFilm(out, fps, tuple(lengths), tuple(scenes), tuple(setups), tuple(transitions))
