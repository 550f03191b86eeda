"""The ``refs.jpg`` member: every reference crop of a sample in one image, side by side.

A sample used to carry one ``ref{k}.jpg`` member per crop, so samples differed in their
members and a reader that infers one schema from the first samples (Hugging Face
``datasets``, Arrow) failed on the first sample with more or fewer crops. Now every sample
has the same members (``core.naming.SAMPLE_MEMBERS``): the crops are resized to one height
(``STRIP_HEIGHT``, aspect kept) and laid left to right in the order of the json's
``references``; each reference's ``strip_box`` (pixels, end exclusive) says where it lies. A
sample with no reference carries ``placeholder_strip()``: an 8x8 mid-grey JPEG (a few hundred
bytes), never read as a reference since its ``references`` is empty. See docs/layout.md.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

STRIP_HEIGHT = 224  # px; a crop is scaled to it (the trainer squares crops to 256 anyway)
PLACEHOLDER_SIDE = 8
PLACEHOLDER_GREY = 128  # mid grey, as the trainer pads reference crops
JPEG_QUALITY = 93  # as the crops themselves are encoded (subjects/stage.py)


class StripError(ValueError):
    """A strip or a crop that cannot be decoded, or a box outside the strip."""


def _encode(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # never seen: a BGR uint8 image always encodes
        raise StripError("JPEG encoding failed")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """A JPEG as a BGR array; StripError if it is not a decodable image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise StripError("not a decodable image")
    return image


@cache
def placeholder_strip() -> bytes:
    """The ``refs.jpg`` of a sample without references (same bytes in every such sample)."""
    grey = np.full((PLACEHOLDER_SIDE, PLACEHOLDER_SIDE, 3), PLACEHOLDER_GREY, np.uint8)
    return _encode(grey)


def build_strip(crops: list[bytes], height: int = STRIP_HEIGHT) -> tuple[bytes, list[list[int]]]:
    """The strip of ``crops`` (JPEG bytes, in reference order) and each one's box in it,
    ``[x0, y0, x1, y1]`` in strip pixels (end exclusive); the placeholder for no crop."""
    if not crops:
        return placeholder_strip(), []
    tiles: list[np.ndarray] = []
    boxes: list[list[int]] = []
    x = 0
    for data in crops:
        image = decode_image(data)
        h, w = image.shape[:2]
        width = max(1, round(w * height / h))
        # INTER_AREA shrinks without aliasing; most face crops are smaller and grow (cubic)
        interp = cv2.INTER_AREA if h > height else cv2.INTER_CUBIC
        tiles.append(cv2.resize(image, (width, height), interpolation=interp))
        boxes.append([x, 0, x + width, height])
        x += width
    return _encode(np.concatenate(tiles, axis=1)), boxes


def cut_reference(strip: np.ndarray, box: list[int]) -> np.ndarray:
    """One reference crop (BGR) cut out of a decoded strip by its ``strip_box``."""
    x0, y0, x1, y1 = box
    h, w = strip.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise StripError(f"strip_box {box} is outside the {w}x{h} strip")
    return strip[y0:y1, x0:x1]


def reference_crops(data: bytes, boxes: list[list[int]]) -> list[np.ndarray]:
    """Every reference crop (BGR) of a ``refs.jpg`` member, in ``boxes`` order."""
    if not boxes:
        return []
    strip = decode_image(data)
    return [cut_reference(strip, box) for box in boxes]


# JPEG start-of-frame markers (baseline, progressive, ...): not DHT (C4), JPG (C8), DAC (CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first bytes (its frame header), without decoding it, so
    ``validate`` checks a strip's boxes from a few KB; None if not found in ``head``."""
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(head[i + 2 : i + 4], "big")
        if marker in _SOF:
            if i + 9 > len(head):
                return None
            height = int.from_bytes(head[i + 5 : i + 7], "big")
            width = int.from_bytes(head[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None
