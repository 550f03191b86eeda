"""Thumbnails of dropped shots, so a report can show what every drop reason removed.

A dropped shot is in no shard, and the report may run where the films are not: the build keeps
one small JPEG per shot while the keyframe pass decodes (``ShotThumbCollector``, the collector
protocol of ``captions/collector.py``) and writes, per film and reason, the first few dropped
shots' thumbnails to ``curation/examples/{film_id}/{shot:05d}-{reason}.jpg`` in the output
(``example_members``). Cost: one resize and one JPEG encode per shot (~5 KB each held until
the film's curate step; a 1,500-shot film holds ~7 MB), at most ``per_reason`` files per reason
and film on disk.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe

EXAMPLES_DIR = "curation/examples"
THUMB_SIDE = 192  # long side of a thumbnail: a contact sheet shows many at once
JPEG_QUALITY = 80
EXAMPLES_PER_REASON = 2  # per film: enough to see what a reason removes, bounded on disk
_NAME = re.compile(r"^(?P<shot>[0-9]{5})-(?P<reason>[a-z_]+)\.jpg$")


class ShotThumbCollector:
    """Keeps, per shot, a thumbnail of the keyframe nearest the shot's middle (the image as
    the filters saw it: cropped to the active picture)."""

    def __init__(self, shots: list[Shot], side: int = THUMB_SIDE) -> None:
        self.side = side
        self._middle = {s.index: (s.start_frame + s.end_frame - 1) / 2 for s in shots}
        self._best: dict[int, tuple[float, bytes]] = {}

    def wanted(self) -> dict[int, list[int]]:
        return {}  # the keyframes are enough

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None:
        if not is_keyframe or keyframe.shot not in self._middle:
            return
        distance = abs(keyframe.frame - self._middle[keyframe.shot])
        held = self._best.get(keyframe.shot)
        if held is not None and held[0] <= distance:
            return
        self._best[keyframe.shot] = (distance, thumbnail_jpeg(keyframe.image, self.side))

    def finish(self) -> dict[int, bytes]:
        return {shot: jpeg for shot, (_, jpeg) in sorted(self._best.items())}


def thumbnail_jpeg(image_bgr: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    h, w = image_bgr.shape[:2]
    scale = min(1.0, side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # cv2 fails only on an empty image, which a decoded keyframe never is
        raise ValueError(f"cannot encode a {w}x{h} thumbnail")
    return data.tobytes()


def example_members(
    film_id: str, thumbs: dict[int, bytes], dropped: dict[int, str], per_reason: int
) -> dict[str, bytes]:
    """Output paths -> bytes of the first ``per_reason`` dropped shots of each reason (in film
    order) that have a thumbnail."""
    taken: dict[str, int] = {}
    members: dict[str, bytes] = {}
    for shot, reason in sorted(dropped.items()):
        if shot not in thumbs or taken.get(reason, 0) >= per_reason:
            continue
        taken[reason] = taken.get(reason, 0) + 1
        members[f"{EXAMPLES_DIR}/{film_id}/{shot:05d}-{reason}.jpg"] = thumbs[shot]
    return members


def parse_example_name(name: str) -> tuple[int, str] | None:
    """(shot, reason) of an example file name, or None for anything else."""
    found = _NAME.match(name)
    return (int(found["shot"]), found["reason"]) if found else None
