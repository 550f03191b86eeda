"""Near-duplicate shots (issue 16, deliverable 5): a fingerprint of each shot's content over time.

A duplicate repeats *the same footage* (another encode, another size, brighter, a pan-and-scan
crop), not the same place: a static camera 20 s later or the A-B-A-B set-ups of a dialogue
show the same picture with other movement. So one still is not enough. Each shot keeps
``frames_per_shot`` evenly spaced frames (decoded by the keyframe pass, already cropped to
the active picture) and its fingerprint is, per *view* of the shot:

- the frames, in order: the ``dct`` x ``dct`` lowest DCT frequencies of a ``grid`` x ``grid``
  grey thumbnail of each, mean removed and divided by its standard deviation (brightness,
  contrast, fine detail and encode noise drop out; resizing to a square grid ignores the
  aspect, so a rescale or an anamorphic stretch changes nothing);
- the differences between consecutive frames, as unit vectors weighted by how much moved
  (``motion_ref``): where and how the picture moved. Two moments of one set-up share the
  background (the frame blocks agree) but not the movement (the difference blocks do not),
  which pulls their similarity below the threshold; a still shot has ~no difference blocks,
  so its re-encode is matched on the frames alone.

The blocks are concatenated and L2-normalised, so the inner product of two fingerprints is
their similarity (1 = the same). Views: the whole picture, and crops of ``crop_widths`` of
the width at ``crop_positions`` places from left to right, so a pan-and-scan copy (a crop of
the original) or a film wider than its earlier pan-and-scan copy meets a view of the other.
Black and flat shots (text on black, fades: ``max_flat_share``) are not fingerprinted.
The watermark box (when the film has one) is filled with the frame's mean before the
thumbnail, so a channel logo neither makes nor breaks a match.

``embedder`` may name an image model on disk (standard profile, ``CropEmbedder``): the frame
blocks are then its embeddings, the difference blocks stay pixel ones. Matching and the
FAISS index live in ``duplicate_index``.

What it cannot catch (measured: docs/benchmarks.md): a crop narrower than ~0.65 of the width
(a 2.39:1 -> 4:3 pan-and-scan is 0.56: add that width), a window that slides during the shot
(one that rests anywhere is caught), a mirrored or rotated copy, a copy whose cuts fall 4+
frames off on fast motion, a speed change or a re-cut keeping part of a take (the frames
sampled are other moments), heavy colour grading, picture-in-picture, an open-matte copy (more
picture above and below: only horizontal crops are views).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from muss_builder.filters.duplicates import (
    DuplicatesConfig,
)
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe, keyframe_frames

FLAGS: tuple[str, ...] = ("duplicate",)
# a shot's best similarity to its film's earlier shots and to its match in another film (only
# at or above the threshold: the rest depends on claim order); lower is more original
MEASURES: dict[str, Literal["high", "low"]] = {"duplicate_similarity": "low"}

_FLAT_STD = 2.0  # grey levels: a frame flatter than this (black, a grey card) has no picture
_FLAT_LEVELS = 4  # grey levels around the median that count as flat background
# keyframes arrive at up to 1280 px; the thumbnails are 32 px, so views are cut from a
# 256-wide copy (9 ms a frame at 1280x720 -> 1.2 ms)
_WORK_WIDTH = 256


@dataclass
class ShotFingerprints:
    """One film's shot fingerprints: ``vectors[i, v]`` is view ``v`` of shot ``shots[i]`` (view
    0 = the whole picture), unit rows; ``valid[i]`` is False for a shot with no picture to
    compare (black, flat, no frames decoded): it never matches nor is matched."""

    shots: list[int]
    vectors: np.ndarray  # float32 [S, V, D]
    valid: np.ndarray  # bool [S]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[2])

    @property
    def n_views(self) -> int:
        return int(self.vectors.shape[1])


def view_boxes(width: int, config: DuplicatesConfig) -> list[tuple[int, int]]:
    """(x0, x1) column spans of the views of a picture ``width`` wide: whole, then crops."""
    boxes = [(0, width)]
    for frac in config.crop_widths:
        cw = max(1, round(width * frac))
        n = config.crop_positions
        for k in range(n):
            x0 = (width - cw) // 2 if n == 1 else round((width - cw) * k / (n - 1))
            boxes.append((x0, x0 + cw))
    return boxes


def _thumb(gray: np.ndarray, config: DuplicatesConfig) -> tuple[np.ndarray, float]:
    """The low ``dct`` x ``dct`` frequencies of a zero-mean, unit-std ``grid`` x ``grid``
    thumbnail (flattened), and the thumbnail's std before normalising. The DCT is orthonormal,
    so inner products and differences of these blocks are those of the thumbnails' coarse
    content: fine detail and encode noise are dropped, and the block is 4x smaller."""
    grid = config.grid
    small = cv2.resize(gray, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32)
    std = float(small.std())
    if std < _FLAT_STD:  # a black or flat frame (a fade's end): no content, no noise amplified
        return np.zeros(config.dct**2, np.float32), std
    low = cv2.dct((small - small.mean()) / max(std, 1e-6))[: config.dct, : config.dct]
    return low.ravel() / grid, std


def _flat_share(gray: np.ndarray) -> float:
    """Share of a 64x64 thumbnail within ``_FLAT_LEVELS`` of its median grey."""
    small = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
    return float(np.mean(np.abs(small - int(np.median(small))) <= _FLAT_LEVELS))


def _unit(x: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(x))
    return x / n if n > 1e-9 else np.zeros_like(x)


def shot_vector(
    frame_blocks: Sequence[np.ndarray], thumbs: Sequence[np.ndarray], motion_ref: float
) -> np.ndarray:
    """One view's fingerprint: frame blocks (unit), then movement blocks (unit x weight)."""
    blocks = [_unit(b) for b in frame_blocks]
    for a, b in itertools.pairwise(thumbs):
        diff = b - a
        rms = float(np.sqrt(np.sum(diff**2)))  # of the thumbnail, in frame std units
        blocks.append(_unit(diff) * min(1.0, rms / motion_ref))
    return _unit(np.concatenate(blocks)).astype(np.float32)


class ShotFingerprintCollector:
    """Keyframe-pass collector (the protocol of ``captions/collector.py``): keeps per shot the
    views' thumbnails of its chosen frames only (dct^2 floats each), never the frames."""

    def __init__(
        self,
        shots: list[Shot],
        config: DuplicatesConfig,
        watermark_boxes: dict[int, list[int] | None],
        embedder: Any = None,
    ) -> None:
        self.shots = [s.index for s in shots]
        self.config = config
        self.watermark_boxes = watermark_boxes
        self.frames = keyframe_frames(shots, config.frames_per_shot)
        # an image model named by the config (standard profile); pass one in to share it
        # between films (it loads once, lazily, on the first shot)
        self.embedder = embedder if embedder is not None else make_embedder(config)
        # shot -> per frame, per view, the low-frequency thumbnail block (dct^2 floats)
        self._thumbs: dict[int, list[list[np.ndarray]]] = {}
        # shot -> per frame, the image model's [views, D] embeddings (made as frames arrive:
        # only vectors are held, never the pictures)
        self._embedded: dict[int, list[np.ndarray]] = {}
        self._flat: dict[int, bool] = {}

    def wanted(self) -> dict[int, list[int]]:
        return self.frames

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None:
        if keyframe.frame not in self.frames.get(keyframe.shot, ()):
            return
        image = keyframe.image
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image.copy()
        box = self.watermark_boxes.get(keyframe.shot)
        if box is not None:
            x0, y0, x1, y1 = box
            region = gray[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
            region[...] = int(gray[::4, ::4].mean())
        h, w = gray.shape[:2]
        if w > _WORK_WIDTH:  # one shrink, then every view is cut from the small picture
            size = (_WORK_WIDTH, max(1, round(h * _WORK_WIDTH / w)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
            w = _WORK_WIDTH
        views, crops = [], []
        flat = _flat_share(gray) >= self.config.max_flat_share
        spans = zip(
            view_boxes(w, self.config), view_boxes(image.shape[1], self.config), strict=True
        )
        for (x0, x1), (ix0, ix1) in spans:
            thumb, std = _thumb(gray[:, x0:x1], self.config)
            flat |= std < _FLAT_STD and x0 == 0 and x1 == w
            views.append(thumb)
            if self.embedder is not None:  # the model sees the full-size picture's view
                crops.append(np.ascontiguousarray(image[:, ix0:ix1]))
        self._thumbs.setdefault(keyframe.shot, []).append(views)
        if crops:
            self._embedded.setdefault(keyframe.shot, []).append(self.embedder.embed(crops))
        # a shot is flat when every frame is (one real frame is enough to compare)
        self._flat[keyframe.shot] = self._flat.get(keyframe.shot, True) and flat

    def finish(self) -> ShotFingerprints:
        n_views = len(view_boxes(100, self.config))
        dim = self._dim()
        vectors = np.zeros((len(self.shots), n_views, dim), np.float32)
        valid = np.zeros(len(self.shots), bool)
        for i, shot in enumerate(self.shots):
            frames = self._thumbs.get(shot, [])
            if not frames or self._flat.get(shot, True):
                continue
            blocks = self._model_blocks(shot, n_views)
            for v in range(n_views):
                thumbs = [f[v] for f in frames]
                frame_blocks = blocks[v] if blocks is not None else thumbs
                vectors[i, v] = _pad(shot_vector(frame_blocks, thumbs, self.config.motion_ref), dim)
            valid[i] = True
        return ShotFingerprints(self.shots, vectors, valid)

    def _dim(self) -> int:
        k = self.config.frames_per_shot
        per_frame = self.config.dct**2
        if self.embedder is not None:
            if not getattr(self.embedder, "dim", 0):
                self.embedder.setup()
            per_frame = int(self.embedder.dim)
        return k * per_frame + (k - 1) * self.config.dct**2

    def _model_blocks(self, shot: int, n_views: int) -> list[list[np.ndarray]] | None:
        """Per view, the image model's embedding of each frame (None: pixels only)."""
        if self.embedder is None:
            return None
        frames = self._embedded.pop(shot, [])
        return [[emb[v] for emb in frames] for v in range(n_views)]


def _pad(vector: np.ndarray, dim: int) -> np.ndarray:
    """A shot with fewer frames than asked (a very short shot) gets zeros for the rest: the
    unit norm is kept, and its fingerprint still meets a copy that lost the same frames."""
    out = np.zeros(dim, np.float32)
    out[: min(dim, len(vector))] = vector[:dim]
    return out


@dataclass
class FilmDuplicates:
    """What the registry says about one film."""

    # shot -> (earlier film_id, its shot, similarity) for shots at or above the threshold
    shot_matches: dict[int, tuple[str, int, float]] = field(default_factory=dict)
    # per shot (in ``ShotFingerprints.shots`` order): the best similarity to the film's own
    # earlier shots and to an earlier film's shot at or above the threshold (``match_film``)
    shot_similarity: list[float] = field(default_factory=list)
    film_duplicate_of: str | None = None  # a whole-film duplicate of this earlier film


def make_embedder(config: DuplicatesConfig) -> Any:
    """None for "pixels", else a ``CropEmbedder`` on the named local model (loaded lazily)."""
    if config.embedder == "pixels":
        return None
    from muss_builder.subjects.embedders import CropEmbedder

    return CropEmbedder(config.embedder, device=config.device)


def shot_fields(result: FilmDuplicates, fingerprints: ShotFingerprints) -> dict[int, dict]:
    """Per shot, what its record gets from this filter (the output contract): ``flags``
    (["duplicate"] or []), ``duplicate_of`` ({"film_id", "shot"} or None) and
    ``quality`` ({"duplicate_similarity": float}, always)."""
    out = {}
    for shot, similarity in zip(fingerprints.shots, result.shot_similarity, strict=True):
        match = result.shot_matches.get(shot)
        out[shot] = {
            "flags": ["duplicate"] if match else [],
            "duplicate_of": {"film_id": match[0], "shot": match[1]} if match else None,
            "quality": {"duplicate_similarity": float(similarity)},
        }
    return out


def film_duplicate_of(result: FilmDuplicates) -> dict | None:
    """The film record's ``duplicate_of`` ({"film_id"} or None); status ``duplicate`` when set."""
    return {"film_id": result.film_duplicate_of} if result.film_duplicate_of else None
