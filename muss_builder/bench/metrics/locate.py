"""Where the script's subjects are in a generated video, and what their references look like.

A generator is not told where to put a subject outside the reference's target frame, so it is
looked for:
- a face subject (a reference of kind ``face`` whose face the recogniser found) is the face
  most similar to the subject's references in each sampled frame, kept when its identity
  cosine passes the gate;
- any other subject is taken to be where the script says: its ground-truth box in that shot
  nearest in time (``ScriptShot.subjects``), or a reference's target box for that shot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from muss_builder.bench.metrics.consistency import unit
from muss_builder.train.script import Box, Script, ScriptReference

HEAD_MARGIN = 1.6  # face box -> head crop, as the dataset's reference crops are cut


@dataclass
class LoadedReference:
    ref: ScriptReference
    image_bgr: np.ndarray
    crop_embedding: np.ndarray
    # the reference's face as measured pasted into its target box (see ``paste``), when it is
    # a face reference and the detector finds one; None otherwise
    face: Any = None


@dataclass
class Sighting:
    """A subject seen in one sampled frame."""

    frame: int
    crop_bgr: np.ndarray
    face: Any = None  # the matched Face (faces only)
    identity: float | None = None  # cosine to the subject's reference identity


@dataclass
class SubjectInShot:
    subject: str
    kind: str  # "face" (found by identity) or "box" (the script's box)
    sightings: list[Sighting] = field(default_factory=list)


def paste(image: np.ndarray, box: Box, background: np.ndarray) -> tuple[np.ndarray, Box]:
    """The reference as a sticker would show it: scaled to the target box's height (aspect
    kept), centred on the box, over ``background`` (the generated target frame, BGR); and
    where it landed, in pixels.

    The reference's face is measured here rather than in the crop itself, because the face
    detector's landmarks and the recogniser's embedding shift with the scale and the
    surroundings a face is seen in (several degrees, a few hundredths of cosine on the shipped
    photos): measured in the video's own conditions, an unchanged paste of the reference reads
    as exactly the reference.
    """
    canvas = background.copy()
    height, width = canvas.shape[:2]
    scale = (box[3] - box[1]) * height / image.shape[0]
    w, h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (w, h), interpolation=shrink)
    x = round((box[0] + box[2]) / 2 * width - w / 2)
    y = round(box[1] * height)
    a, b, c, d = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if c > a and d > b:
        canvas[b:d, a:c] = resized[b - y : d - y, a - x : c - x]
    return canvas, (a, b, c, d)


def load_references(
    script: Script, script_dir: Path, models: Any, frames_rgb: np.ndarray
) -> list[LoadedReference]:
    """Every reference image read and embedded; a face reference's face is measured pasted
    into its target box over the generated target frame (``paste``)."""
    loaded = []
    for k, ref in enumerate(script.references):
        path = Path(script_dir) / ref.image
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(
                f"{script.key}: reference {k} image {path} is missing or unreadable"
            )
        face, head = None, image
        if ref.kind == "face" and models.faces is not None:
            frame = frames_rgb[min(ref.frame, frames_rgb.shape[0] - 1)]
            canvas, area = paste(image, ref.box, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            inside = [f for f in models.faces.detect(canvas) if _centre_in(f.box, area)]
            if inside:
                face = max(inside, key=lambda f: f.size)
                # compared with generated head crops: cut the reference the same way
                head = crop(canvas, face.box, HEAD_MARGIN)
        embedding = models.frame_embedder.embed([head])[0]
        loaded.append(LoadedReference(ref, image, embedding, face))
    return loaded


def _centre_in(box: tuple[float, ...], area: tuple[float, ...]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]


def crop(image: np.ndarray, box_px: tuple[float, float, float, float], margin: float = 1.0):
    """The box (pixels), scaled by ``margin`` about its centre, clipped to the image."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box_px
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * margin / 2, (y1 - y0) * margin / 2
    a, b = max(0, round(cx - hw)), max(0, round(cy - hh))
    c, d = min(w, round(cx + hw)), min(h, round(cy + hh))
    return image[b:d, a:c] if c > a and d > b else image[0:1, 0:1]


def script_box(script: Script, shot: int, subject: str, frame: int) -> Box | None:
    """The script's box for ``subject`` in ``shot`` nearest ``frame`` in time, if any."""
    boxes = script.shots[shot].subjects.get(subject, [])
    if boxes:
        return min(boxes, key=lambda fb: abs(fb[0] - frame))[1]
    for ref in script.references:
        if ref.subject == subject and ref.shot == shot:
            return ref.box
    return None


def identity_anchors(refs: list[LoadedReference]) -> dict[str, np.ndarray]:
    """Subject -> the normalised mean identity of its face references (faces found only)."""
    groups: dict[str, list[np.ndarray]] = {}
    for r in refs:
        if r.face is not None:
            groups.setdefault(r.ref.subject, []).append(r.face.embedding)
    return {s: unit(np.mean(unit(np.stack(e)), axis=0)) for s, e in groups.items()}


def locate(
    script: Script,
    shot: int,
    frames: dict[int, np.ndarray],
    faces: dict[int, list[Any]],
    anchors: dict[str, np.ndarray],
    gate: float,
) -> dict[str, SubjectInShot]:
    """Every script subject seen in ``shot``'s sampled ``frames`` (index -> BGR image)."""
    subjects = set(script.shots[shot].subjects) | {r.subject for r in script.references}
    found: dict[str, SubjectInShot] = {}
    for subject in sorted(subjects):
        anchor = anchors.get(subject)
        seen = SubjectInShot(subject, "face" if anchor is not None else "box")
        for index, image in frames.items():
            if anchor is not None:
                candidates = faces.get(index, [])
                if not candidates:
                    continue
                best = max(candidates, key=lambda f: float(f.embedding @ anchor))
                similarity = float(best.embedding @ anchor)
                if similarity >= gate:
                    patch = crop(image, best.box, HEAD_MARGIN)
                    seen.sightings.append(Sighting(index, patch, best, similarity))
                continue
            box = script_box(script, shot, subject, index)
            if box is not None:
                h, w = image.shape[:2]
                px = (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
                seen.sightings.append(Sighting(index, crop(image, px)))
        if seen.sightings:
            found[subject] = seen
    return found


def mask_subjects(image: np.ndarray, boxes_px: list[tuple[float, float, float, float]]):
    """The frame with every subject box (faces enlarged to the head and shoulders) filled
    with the frame's mean colour: what is left is the background."""
    out = image.copy()
    fill = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    h, w = image.shape[:2]
    for x0, y0, x1, y1 in boxes_px:
        a, b = max(0, round(x0)), max(0, round(y0))
        c, d = min(w, round(x1)), min(h, round(y1))
        if c > a and d > b:
            out[b:d, a:c] = fill
    return out
