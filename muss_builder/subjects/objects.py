"""Non-face subjects on keyframes: person bodies, animals and props, each with an embedding.

Faces alone miss subjects seen from behind, too small for a face, or not human at all, so this
stage finds whole bodies and things and embeds their crops, beside the face stage (``faces.py``).
One interface, two interchangeable parts:

- a detector from ``DETECTORS`` (name -> class, like PySceneDetect's detector interface):
  ``"transformers"``, any Hugging Face ``AutoModelForObjectDetection`` checkpoint
  (``facebook/detr-resnet-50``, ...) already on disk, for people, animals and props;
- an embedder (``embedders.py``): ``CropEmbedder`` over a Hugging Face image model on disk
  (DINOv2, SigLIP, CLIP), or, with no model, ``ColourHistogramEmbedder``, which needs no
  weights but only sees colours.

Nothing is downloaded: a model is a local folder, or a hub id that is already in the local
Hugging Face cache (``muss_builder.core.models``); anything else is a ``ModelNotFoundError``
that says where to put it.

The offline profile has no object stage: no detector with weights inside an installed
package serves (OpenCV 5 moved its HOG people detector out of opencv-python into the contrib
``xobjdetect`` module, and HOG finds only upright, unoccluded walkers anyway), so offline
builds identify faces only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from muss_builder.core.models import load_pretrained, pick_device
from muss_builder.core.torchvision_compat import prepare_torchvision
from muss_builder.subjects.embedders import ColourHistogramEmbedder, CropEmbedder, to_rgb
from muss_builder.subjects.faces import sharpness

# COCO names (what DETR-style checkpoints call them) of things that can be the subject of a
# shot: people, animals, vehicles and props a character carries. Furniture, food and the like
# are scenery, not subjects.
DEFAULT_LABELS: tuple[str, ...] = (
    "person",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "backpack",
    "umbrella",
    "handbag",
    "suitcase",
    "teddy bear",
)


@dataclass
class Detection:
    """One box from a detector, before cropping and embedding."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    label: str
    score: float  # 0..1


@dataclass
class SubjectBox:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels, inside the image
    label: str  # e.g. "person", "dog"
    score: float  # detector confidence, 0..1
    embedding: np.ndarray  # float32 [D], L2-normalised
    sharpness: float  # variance of the Laplacian of the crop (grey, 112 px)
    size: float  # shorter side of the box, pixels


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        min(max(x0, 0.0), width),
        min(max(y0, 0.0), height),
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
    )


# ---------------------------------------------------------------------------------------------
# Detectors


class SubjectDetector:
    """The detector interface: ``setup()`` once, then ``detect`` or ``detect_batch``.

    Every detector is built as ``cls(model, min_score=..., labels=..., device=...)`` and
    returns boxes with a score in 0..1 and a label; ``labels`` is an allow-list (None: all).
    """

    name: ClassVar[str]

    def __init__(
        self,
        model: str | None = None,
        *,
        min_score: float = 0.5,
        labels: Sequence[str] | None = DEFAULT_LABELS,
        device: str = "auto",
    ) -> None:
        self.model = model
        self.min_score = min_score
        self.labels = None if labels is None else frozenset(s.lower() for s in labels)
        self.device = device

    def setup(self) -> None:
        """Load whatever the detector needs; called lazily by ``detect`` otherwise."""

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        return self.detect_batch([image_bgr])[0]

    def detect_batch(self, images_bgr: Sequence[np.ndarray]) -> list[list[Detection]]:
        raise NotImplementedError

    def _wanted(self, label: str) -> bool:
        return self.labels is None or label.lower() in self.labels


class TransformersDetector(SubjectDetector):
    """Any ``AutoModelForObjectDetection`` checkpoint on disk (DETR, Conditional/Deformable
    DETR, RT-DETR, ...): people, animals and props, with the checkpoint's own label names.

    Images go through the checkpoint's own processor in batches of ``batch_size``;
    ``post_process_object_detection`` turns the outputs into boxes in image pixels, keeping
    those scoring at least ``min_score`` whose label is in ``labels``.
    """

    name = "transformers"

    def __init__(
        self,
        model: str | None = None,
        *,
        min_score: float = 0.5,
        labels: Sequence[str] | None = DEFAULT_LABELS,
        device: str = "auto",
        batch_size: int = 8,
    ) -> None:
        if not model:
            raise ValueError(
                "the transformers detector needs a model: a checkpoint folder or a hub id "
                "already in the local Hugging Face cache (e.g. facebook/detr-resnet-50)"
            )
        super().__init__(model, min_score=min_score, labels=labels, device=device)
        self.batch_size = batch_size
        self._processor: Any = None
        self._model: Any = None
        self._device = "cpu"

    def setup(self) -> None:
        prepare_torchvision()  # before transformers builds a processor
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        assert self.model is not None
        self._device = pick_device(self.device)
        self._processor = load_pretrained(AutoImageProcessor, self.model)
        network = load_pretrained(AutoModelForObjectDetection, self.model)
        self._model = network.to(self._device).eval()

    def detect_batch(self, images_bgr: Sequence[np.ndarray]) -> list[list[Detection]]:
        if self._model is None:
            self.setup()
        import torch

        id2label = self._model.config.id2label
        found: list[list[Detection]] = []
        for start in range(0, len(images_bgr), self.batch_size):
            chunk = images_bgr[start : start + self.batch_size]
            sizes = [image.shape[:2] for image in chunk]
            inputs = self._processor(images=[to_rgb(i) for i in chunk], return_tensors="pt")
            with torch.inference_mode():
                outputs = self._model(**inputs.to(self._device))
            results = self._processor.post_process_object_detection(
                outputs, threshold=self.min_score, target_sizes=sizes
            )
            for (h, w), result in zip(sizes, results, strict=True):
                dets = []
                for score, label_id, box in zip(
                    result["scores"].tolist(),
                    result["labels"].tolist(),
                    result["boxes"].tolist(),
                    strict=True,
                ):
                    label = str(id2label.get(int(label_id), label_id))
                    if self._wanted(label):
                        dets.append(Detection(clip_box(box, w, h), label, float(score)))
                found.append(dets)
        return found


DETECTORS: dict[str, type[SubjectDetector]] = {
    TransformersDetector.name: TransformersDetector,
}


def make_detector(name: str, model: str | None = None, **kwargs: Any) -> SubjectDetector:
    """The registered detector ``name``; an unknown name lists the known ones."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}: choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](model, **kwargs)


# ---------------------------------------------------------------------------------------------
# The stage


class ObjectStage:
    """``setup()`` loads the detector and embedder once (a Ray actor holds them); ``detect``
    runs per keyframe: boxes, clipped to the image, without small or unsure ones, at most
    ``max_per_image`` of the most confident, each cropped and embedded.

    ``embedder_model=None`` uses ``ColourHistogramEmbedder``: no weights, appearance only, much
    weaker than a learnt embedder (DINOv2, SigLIP); good enough to tell differently dressed
    people apart, not to re-identify anyone.
    """

    def __init__(
        self,
        detector: str = "transformers",
        detector_model: str | None = None,
        embedder_model: str | None = None,
        min_score: float = 0.5,
        min_size: int = 32,
        max_per_image: int = 20,
        device: str = "auto",
        labels: Sequence[str] | None = DEFAULT_LABELS,
    ) -> None:
        if detector not in DETECTORS:  # fail when configured, not on the first keyframe
            raise ValueError(f"unknown detector {detector!r}: choose one of {sorted(DETECTORS)}")
        self.detector = detector
        self.detector_model = detector_model
        self.embedder_model = embedder_model
        self.min_score = min_score
        self.min_size = min_size
        self.max_per_image = max_per_image
        self.device = device
        self.labels = labels
        self._detector: SubjectDetector | None = None
        self._embedder: CropEmbedder | ColourHistogramEmbedder | None = None

    def setup(self) -> None:
        detector = make_detector(
            self.detector,
            self.detector_model,
            min_score=self.min_score,
            labels=self.labels,
            device=self.device,
        )
        detector.setup()
        embedder: CropEmbedder | ColourHistogramEmbedder
        if self.embedder_model is None:
            embedder = ColourHistogramEmbedder()
        else:
            embedder = CropEmbedder(self.embedder_model, device=self.device)
        embedder.setup()
        self._detector, self._embedder = detector, embedder

    def detect(self, image_bgr: np.ndarray) -> list[SubjectBox]:
        return self.detect_batch([image_bgr])[0]

    def detect_batch(self, images_bgr: Sequence[np.ndarray]) -> list[list[SubjectBox]]:
        """Per image its subjects, most confident first; all crops embedded in one go."""
        if self._detector is None or self._embedder is None:
            self.setup()
        assert self._detector is not None and self._embedder is not None
        kept: list[list[tuple[Detection, np.ndarray]]] = []
        for image, dets in zip(images_bgr, self._detector.detect_batch(images_bgr), strict=True):
            h, w = image.shape[:2]
            good = []
            for det in sorted(dets, key=lambda d: -d.score):
                box = clip_box(det.box, w, h)
                if det.score < self.min_score or _shorter_side(box) < self.min_size:
                    continue
                x0, y0, x1, y1 = (round(v) for v in box)
                crop = image[y0:y1, x0:x1]
                if crop.size:  # a sliver can round to nothing when min_size is 0
                    good.append((Detection(box, det.label, det.score), crop))
            kept.append(good[: self.max_per_image])
        embeddings = iter(self._embedder.embed([crop for good in kept for _, crop in good]))
        return [
            [
                SubjectBox(
                    det.box,
                    det.label,
                    det.score,
                    next(embeddings),
                    sharpness(image, det.box),
                    _shorter_side(det.box),
                )
                for det, _ in good
            ]
            for image, good in zip(images_bgr, kept, strict=True)
        ]


def _shorter_side(box: tuple[float, float, float, float]) -> float:
    return min(box[2] - box[0], box[3] - box[1])
