"""Non-face subjects on keyframes: person bodies, animals and props, each with an embedding.

Faces alone miss subjects seen from behind, too small for a face, or not human at all, so this
stage finds whole bodies and things and embeds their crops, beside the face stage (``faces.py``).
One interface, two interchangeable parts:

- a detector from ``DETECTORS`` (name -> class, like PySceneDetect's detector interface):
  ``"transformers"``, any Hugging Face ``AutoModelForObjectDetection`` checkpoint
  (``facebook/detr-resnet-50``, ...) already on disk, for people, animals and props;
- an embedder: ``CropEmbedder`` over a Hugging Face image model on disk (DINOv2, SigLIP,
  CLIP), or, with no model, ``ColourHistogramEmbedder``, which needs no weights but only sees
  colours.

Nothing is downloaded: a model is a local folder, or a hub id that is already in the local
Hugging Face cache (``local_files_only=True`` in both cases); anything else is a
``FileNotFoundError`` that says where to put it.

The offline profile has no object stage: no detector with weights inside an installed
package serves (OpenCV 5 moved its HOG people detector out of opencv-python into the contrib
``xobjdetect`` module, and HOG finds only upright, unoccluded walkers anyway), so offline
builds identify faces only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

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


# ---------------------------------------------------------------------------------------------
# Model files and devices


def resolve_model(model: str) -> tuple[str, str]:
    """(what to pass to ``from_pretrained``, how to describe it in an error).

    A folder that exists is used as it is. A string that can only be a path (absolute, ``./``,
    ``~``, or more than one ``/``) but is no folder is an error at once. Anything else is taken
    as a hub id, looked up in the local Hugging Face cache only.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), f"folder {path}"
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise FileNotFoundError(
            f"model folder {path} not found: put the checkpoint (config.json, weights and "
            "preprocessor_config.json) there (muss-builder never downloads models)"
        )
    return model, "a hub id, looked up in the local Hugging Face cache only"


def _missing_model(model: str, described: str, err: Exception) -> FileNotFoundError:
    return FileNotFoundError(
        f"model {model!r} ({described}) could not be loaded: pass a folder "
        "holding the checkpoint, or put it in the local Hugging Face cache yourself, e.g. "
        f"`hf download {model}` (muss-builder never downloads models). Cause: {err}"
    )


def torch_device(device: str) -> str:
    """``"auto"`` is the GPU when torch sees one, else the CPU; anything else is kept."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_pretrained(model: str, loader: Any) -> tuple[Any, Any]:
    """(image processor, model) from a local folder or the local cache, never the network."""
    from transformers import AutoImageProcessor

    source, described = resolve_model(model)
    try:
        processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        network = loader.from_pretrained(source, local_files_only=True)
    except OSError as err:  # transformers' "not found / could not connect" errors
        raise _missing_model(model, described, err) from err
    return processor, network


def _to_rgb(image_bgr: np.ndarray) -> np.ndarray:
    if image_bgr.ndim == 2:
        return cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image_bgr[..., 2::-1])


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
        from transformers import AutoModelForObjectDetection

        assert self.model is not None
        self._processor, network = _load_pretrained(self.model, AutoModelForObjectDetection)
        self._device = torch_device(self.device)
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
            inputs = self._processor(images=[_to_rgb(i) for i in chunk], return_tensors="pt")
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
# Embedders


class CropEmbedder:
    """An image model on disk turns crops into L2-normalised vectors.

    Which vector: a model with ``get_image_features`` (CLIP, SigLIP: load the full checkpoint)
    gives its image embedding, the space the model was trained to compare images in. Any
    other model (DINOv2, ViT) gives the CLS token of ``last_hidden_state``, which is what
    DINOv2 trains for retrieval (for DINOv2 it equals ``pooler_output``; for ViT the pooler is
    an extra, often untrained, layer, so it is not used). A vision tower without a CLS token
    (``SiglipVisionModel`` alone) is therefore not a good fit: use the full checkpoint.
    """

    def __init__(self, model: str, device: str = "auto", batch_size: int = 32) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.dim = 0  # known after setup()
        self._processor: Any = None
        self._model: Any = None
        self._device = "cpu"
        self._image_features = False

    def setup(self) -> None:
        from transformers import AutoModel

        self._processor, network = _load_pretrained(self.model, AutoModel)
        self._device = torch_device(self.device)
        self._model = network.to(self._device).eval()
        self._image_features = callable(getattr(self._model, "get_image_features", None))
        # one grey crop tells the embedding size, so an empty batch still has a shape
        self.dim = int(self._features([np.full((32, 32, 3), 128, np.uint8)]).shape[1])

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """[N, D] float32, unit rows, for N BGR crops (N may be 0)."""
        if self._model is None:
            self.setup()
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        parts = [
            self._features(crops[i : i + self.batch_size])
            for i in range(0, len(crops), self.batch_size)
        ]
        return _unit_rows(np.concatenate(parts))

    def _features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self._processor(images=[_to_rgb(c) for c in crops], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self._device)
        with torch.inference_mode():
            if self._image_features:
                out = self._model.get_image_features(pixel_values=pixels)
                # transformers 4 returns the tensor, 5 an output whose pooler_output it is
                feats = out if torch.is_tensor(out) else out.pooler_output
            else:
                feats = self._model(pixel_values=pixels).last_hidden_state[:, 0]
        return feats.float().cpu().numpy()


class ColourHistogramEmbedder:
    """No-weights fallback: the HSV colour histograms of a crop's top and bottom halves.

    Appearance only, and much weaker than a learnt embedder: it tells a red coat from a blue
    one, and shirt-over-trousers from the reverse, but not two people dressed alike, nor the
    same person in a different light or outfit. Each half is an 8 (hue) x 8 (saturation) x 4
    (value) histogram, fewer value bins because exposure changes between shots; each is
    L1-normalised and square-rooted, so the cosine of two embeddings is the mean Bhattacharyya
    coefficient of the halves. 512 values, L2-normalised.
    """

    dim = 512
    _BINS = (8, 8, 4)

    def setup(self) -> None:
        """Nothing to load."""

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), self.dim), np.float32)
        for i, crop in enumerate(crops):
            if crop.size == 0:
                out[i] = 1.0
                continue
            bgr = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.ndim == 2 else crop[..., :3]
            hsv = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2HSV)
            half = hsv.shape[0] // 2
            halves = (hsv[: max(1, half)], hsv[half:])
            hists = [
                cv2.calcHist([part], [0, 1, 2], None, list(self._BINS), [0, 180, 0, 256, 0, 256])
                .ravel()
                .astype(np.float64)
                for part in halves
            ]
            out[i] = np.concatenate([np.sqrt(hh / max(hh.sum(), 1.0)) for hh in hists])
        return _unit_rows(out)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


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
