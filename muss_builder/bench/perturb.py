"""Broken baselines made from the suite's real clips: what each metric must score worse.

Every variant keeps the script (captions, shot lengths, requested cuts, references) and breaks
one thing in the video:

- ``sticker``: the reference crop, unchanged but for scaling (to the box's height, aspect kept,
  centred on the box), pasted at its box (``ScriptReference.box``) in every frame of its
  target shot, **over the real clip**. Pasting over the real footage, not a plain
  background, keeps everything the sticker does not break (cuts, backgrounds, lighting, the
  captions' facts) so only the subject becomes a copy: the variant isolates what ACP-Var
  exists to catch. The box is the subject's box grown by the crop
  margin (suite.py), so the pasted head covers the real one. Shots without a reference stay real.
- ``shuffled``: every shot replaced by a shot of another sample (a seeded choice; samples of
  other films first, different samples for the shots of one video where there are enough),
  re-timed to the same length by nearest-frame resampling and scaled to the clip size. Cuts
  stay where requested; captions, subjects and references no longer match.
- ``moved_cuts``: every cut moved by ``d`` frames (all later, or all earlier when the last shot
  is too short), by re-timing the shot boundaries: shot ``k`` fills ``[c_k + m_k, c_k+1 +
  m_k+1)`` with its own frames, resampled to the new length. Everything but the timing is real.

What was done to every video is recorded (``perturbations.json`` beside the videos).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from muss_builder.media.commands import H264Options
from muss_builder.media.h264 import write_h264
from muss_builder.media.tools import MediaError
from muss_builder.train.script import Box, Script

VARIANTS = ("sticker", "shuffled", "moved_cuts")


@dataclass
class Perturbation:
    """One broken video and what was done to make it."""

    key: str
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    record: dict[str, Any] = field(default_factory=dict)


def box_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` pixel bounds of a normalised box, at least one pixel each way."""
    x0, y0 = round(box[0] * width), round(box[1] * height)
    x1 = min(width, max(x0 + 1, round(box[2] * width)))
    y1 = min(height, max(y0 + 1, round(box[3] * height)))
    return min(x0, width - 1), min(y0, height - 1), x1, y1


def load_crop_rgb(path: Path) -> np.ndarray:
    crop = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if crop is None:
        raise MediaError(f"{path}: cannot read the reference crop")
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def sticker_patch(
    crop: np.ndarray, box: Box, width: int, height: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """The crop scaled to the box's height (its aspect kept: a sticker is not reshaped),
    centred on the box, cut to the frame; returns ``(patch, (x0, y0))``."""
    bx0, by0, bx1, by1 = box_pixels(box, width, height)
    scale = (by1 - by0) / crop.shape[0]
    pw = max(1, round(crop.shape[1] * scale))
    patch = cv2.resize(crop, (pw, by1 - by0), interpolation=cv2.INTER_AREA)
    x0 = round((bx0 + bx1) / 2 - pw / 2)
    left = max(0, -x0)  # columns that fall off the frame's left edge
    patch = patch[:, left : left + max(1, min(pw - left, width - max(x0, 0)))]
    return patch, (max(x0, 0), by0)


def sticker(frames: np.ndarray, script: Script, script_dir: Path) -> Perturbation:
    """Paste every reference crop, scaled to its box, into every frame of its target shot."""
    _check_frames(frames, script)
    out = frames.copy()
    height, width = frames.shape[1:3]
    pasted = []
    ranges = script.shot_ranges
    for ref in script.references:
        crop = load_crop_rgb(script_dir / ref.image)
        patch, (x0, y0) = sticker_patch(crop, ref.box, width, height)
        start, end = ranges[ref.shot]
        ph, pw = patch.shape[:2]
        out[start:end, y0 : y0 + ph, x0 : x0 + pw] = patch  # the same pixels in every frame
        pasted.append({"image": ref.image, "shot": ref.shot, "at_px": [x0, y0, x0 + pw, y0 + ph]})
    note = {} if pasted else {"note": "no references: the video is the real clip"}
    return Perturbation(script.key, out, {"variant": "sticker", "pasted": pasted, **note})


def resample(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames spread over ``frames`` by nearest index (the first frame always kept)."""
    if n < 1 or len(frames) < 1:
        raise ValueError(f"cannot resample {len(frames)} frames to {n}")
    index = (np.arange(n) * len(frames)) // n
    return frames[index]


def move_cuts(frames: np.ndarray, script: Script, d: int) -> Perturbation:
    """Re-time the shot boundaries so every cut lands ``d`` frames away from the script's."""
    _check_frames(frames, script)
    if d < 1:
        raise ValueError(f"cuts must move by at least one frame, got d={d}")
    lengths = [s.n_frames for s in script.shots]
    if len(lengths) < 2:
        raise ValueError(f"{script.key}: a single shot has no cut to move")
    # all cuts later (the first shot grows, the last shrinks) or all earlier; every shot in
    # between keeps its length, so no cut can cross another
    if lengths[-1] > d:
        sign = 1
    elif lengths[0] > d:
        sign = -1
    else:
        raise ValueError(
            f"{script.key}: first and last shots ({lengths[0]}, {lengths[-1]} frames) are too "
            f"short to move the cuts by {d}"
        )
    moves = [sign * d] * (len(lengths) - 1)
    new_cuts = [c + m for c, m in zip(script.cut_frames, moves, strict=True)]
    bounds = [0, *new_cuts, len(frames)]
    parts = []
    for k, (start, end) in enumerate(script.shot_ranges):
        parts.append(resample(frames[start:end], bounds[k + 1] - bounds[k]))
    out = np.concatenate(parts)
    record = {"variant": "moved_cuts", "d": d, "moves": moves, "cuts": new_cuts}
    return Perturbation(script.key, out, record)


def shuffle_shots(
    videos: dict[str, np.ndarray], scripts: Sequence[Script], seed: int = 0
) -> list[Perturbation]:
    """Every shot of every video replaced by a shot of another sample, same length."""
    if len(scripts) < 2:
        raise ValueError("shuffling shots across samples needs at least two scripts")
    rng = random.Random(seed)
    out = []
    for i, script in enumerate(scripts):
        frames = videos[script.key]
        _check_frames(frames, script)
        height, width = frames.shape[1:3]
        others = [j for j in range(len(scripts)) if j != i]
        rng.shuffle(others)
        # donors from other films first: shots of one film share its sets, light and people,
        # so swapping them in would keep much of what the shuffle is meant to break
        film = script.source.get("film_id")
        others.sort(key=lambda j: film is not None and scripts[j].source.get("film_id") == film)
        parts, donors = [], []
        for k, shot in enumerate(script.shots):
            j = others[k % len(others)]  # distinct donor samples while there are enough
            donor = scripts[j]
            # the donor's shot nearest in length: as little re-timing as possible
            kk = min(
                range(len(donor.shots)), key=lambda s: abs(donor.shots[s].n_frames - shot.n_frames)
            )
            start, end = donor.shot_ranges[kk]
            part = resample(videos[donor.key][start:end], shot.n_frames)
            if part.shape[1:3] != (height, width):
                part = np.stack([cv2.resize(f, (width, height), cv2.INTER_AREA) for f in part])
            parts.append(part)
            donors.append({"shot": k, "donor": donor.key, "donor_shot": kk})
        record = {"variant": "shuffled", "seed": seed, "donors": donors}
        out.append(Perturbation(script.key, np.concatenate(parts), record))
    return out


def _check_frames(frames: np.ndarray, script: Script) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{script.key}: frames must be (T, H, W, 3) uint8, got {frames.shape}")
    if len(frames) != script.n_frames:
        raise ValueError(
            f"{script.key}: the video has {len(frames)} frames, the script {script.n_frames}"
        )


def write_video(frames: np.ndarray, fps: float, path: str | Path, crf: int = 12) -> Path:
    """H.264 yuv420p mp4 of RGB frames, one output frame per input frame (no re-timing)."""
    path = Path(path)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: H.264 4:2:0 needs even sizes, got {width}x{height}")
    options = H264Options(preset="veryfast", crf=crf, threads=1)
    return write_h264(frames, path, fps, options, every_frame=True)


def make_variants(
    suite_dir: str | Path,
    out_dir: str | Path,
    variants: Sequence[str] = VARIANTS,
    *,
    d: int = 4,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``out_dir/{variant}/{key}.mp4`` for every script of the suite, made from its
    ``real/{key}.mp4``, with ``perturbations.json`` beside them; return the folders. A script
    a variant cannot break (moved cuts: one shot, or edge shots of ``d`` frames or fewer) gets
    no video there and a ``skipped`` record saying why."""
    from muss_builder.bench.metrics import read_video
    from muss_builder.bench.suite import load_suite

    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(sorted(unknown))}; one of {VARIANTS}")
    suite = load_suite(suite_dir)
    videos = {s.key: read_video(suite.real_video(s.key))[0] for s in suite.scripts}
    folders = {}
    for variant in variants:
        folder = Path(out_dir) / variant
        folder.mkdir(parents=True, exist_ok=True)
        skipped: dict[str, str] = {}
        if variant == "shuffled":
            made = shuffle_shots(videos, suite.scripts, seed)
        elif variant == "sticker":
            made = [sticker(videos[s.key], s, suite.root) for s in suite.scripts]
        else:
            made = []
            for script in suite.scripts:
                try:
                    made.append(move_cuts(videos[script.key], script, d))
                except ValueError as exc:  # one shot, or edge shots too short for d
                    skipped[script.key] = str(exc)
        fps = {s.key: s.fps for s in suite.scripts}
        for p in made:
            write_video(p.frames, fps[p.key], folder / f"{p.key}.mp4")
        records: dict[str, Any] = {p.key: p.record for p in made}
        for key, why in skipped.items():
            records[key] = {"variant": variant, "skipped": why}
        (folder / "perturbations.json").write_text(json.dumps(records, indent=1) + "\n")
        folders[variant] = folder
    return folders
