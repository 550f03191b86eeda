"""Crop embedders of the object stage: a crop in, an L2-normalised vector out.

``CropEmbedder`` runs a Hugging Face image model on disk (DINOv2, SigLIP, CLIP; resolved by
``muss_builder.core.models``, never downloaded); ``ColourHistogramEmbedder`` needs no weights
but sees only colours. Both have ``setup()`` and ``embed(crops) -> [N, D] float32``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from muss_builder.core.models import load_pretrained, pick_device
from muss_builder.core.torchvision_compat import prepare_torchvision


def to_rgb(image_bgr: np.ndarray) -> np.ndarray:
    """RGB for a model's processor, from a BGR (or grey) OpenCV image."""
    if image_bgr.ndim == 2:
        return cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image_bgr[..., 2::-1])


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
        prepare_torchvision()  # before transformers builds a processor
        from transformers import AutoImageProcessor, AutoModel

        self._device = pick_device(self.device)
        self._processor = load_pretrained(AutoImageProcessor, self.model)
        network = load_pretrained(AutoModel, self.model)
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

        inputs = self._processor(images=[to_rgb(c) for c in crops], return_tensors="pt")
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
