"""Text alignment: does each shot show what its caption asked for?

Image-text model (standard profile; CLIP or SigLIP from a local folder)
    ``TA_i = mean_f cos(img(f), txt(c_i))`` over the sampled frames ``f`` of shot ``i``, and
    ``TA = mean_i TA_i``. Raw cosine, no scaling (CLIP ViT-B/32 on good matches sits around
    0.25 to 0.35; MultiShotMaster reports 0.227). Range [-1, 1], higher is better.

Offline proxy (no image-text weights ship in any installed package)
    Each generated shot is described by the facts captioner (camera motion, lighting, shot
    scale and subjects measured from the frames: ``muss_builder/captions/facts.py``, worded
    by ``facts_shot_caption``), and ``TA_i = cos(st(describe(shot_i)), st(c_i))`` with ``st``
    the shipped sentence embedder (all-MiniLM-L6-v2, mean-pooled, unit norm). A much weaker
    proxy: it sees only what the facts captioner measures (camera, light, framing, who is
    there), never actions, objects or places; its values are NOT comparable with CLIP scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from muss_builder.bench.metrics.consistency import unit
from muss_builder.core.models import load_pretrained, pick_device
from muss_builder.core.torchvision_compat import prepare_torchvision


def text_alignment(image_embeddings: np.ndarray, text_embedding: np.ndarray) -> float:
    """Mean cosine of a shot's frame embeddings [k, D] with its caption's embedding [D]."""
    images = unit(np.atleast_2d(image_embeddings))
    return float(np.mean(images @ unit(np.asarray(text_embedding))))


class ImageTextScorer:
    """CLIP / SigLIP (any checkpoint with ``get_image_features`` and ``get_text_features``)."""

    def __init__(self, model: str, device: str = "auto") -> None:
        self.model = model
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._images: Any = None
        self._device = "cpu"

    def setup(self) -> None:
        prepare_torchvision()  # before transformers builds a processor
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self._images = load_pretrained(AutoImageProcessor, self.model)
        self._tokenizer = load_pretrained(AutoTokenizer, self.model)
        network = load_pretrained(AutoModel, self.model)
        for name in ("get_image_features", "get_text_features"):
            if not callable(getattr(network, name, None)):
                raise ValueError(
                    f"{self.model}: {type(network).__name__} has no {name}; text alignment "
                    "needs a joint image-text model such as CLIP or SigLIP"
                )
        self._device = pick_device(self.device)
        self._model = network.to(self._device).eval()

    def embed_images(self, images_rgb: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self._images(images=list(images_rgb), return_tensors="pt")
        with torch.inference_mode():
            pixels = inputs["pixel_values"].to(self._device)
            out = self._model.get_image_features(pixel_values=pixels)
        return unit(_tensor(out).float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        # SigLIP was trained on max-length padded text; CLIP on its end-of-text token
        siglip = "siglip" in str(getattr(self._model.config, "model_type", ""))
        text_config = getattr(self._model.config, "text_config", None)
        length = getattr(text_config, "max_position_embeddings", 77)
        tokens = self._tokenizer(
            list(texts), padding="max_length" if siglip else True, truncation=True,
            max_length=length, return_tensors="pt",
        )  # fmt: skip
        tokens = {k: v.to(self._device) for k, v in tokens.items() if k != "token_type_ids"}
        with torch.inference_mode():
            out = self._model.get_text_features(**tokens)
        return unit(_tensor(out).float().cpu().numpy())


def _tensor(out: Any) -> Any:
    """transformers 4 returns the features, 5 an output whose pooler_output they are."""
    import torch

    return out if torch.is_tensor(out) else out.pooler_output


class SentenceEmbedder:
    """A sentence-transformers-style encoder through plain transformers: mean pooling over
    the attention mask, then unit norm (what all-MiniLM-L6-v2 was trained with)."""

    def __init__(self, model: str, device: str = "auto") -> None:
        self.model = model
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"

    def setup(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = load_pretrained(AutoTokenizer, self.model)
        network = load_pretrained(AutoModel, self.model)
        self._device = pick_device(self.device)
        self._model = network.to(self._device).eval()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokens = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
        ).to(self._device)
        with torch.inference_mode():
            hidden = self._model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return unit(pooled.float().cpu().numpy())


def describe_shot(
    frames_rgb: Sequence[np.ndarray],
    times: Sequence[float],
    face_boxes: Sequence[tuple[float, float, float, float]],
    subjects: Sequence[str],
    n_people: int,
    transition_in: str,
) -> str:
    """The facts captioner's sentence for a generated shot (the proxy's description).

    ``face_boxes`` are normalised face boxes seen in the shot (for the shot scale),
    ``subjects`` the script subject ids recognised in it, ``n_people`` the most faces in one
    frame.
    """
    import cv2

    from muss_builder.captions.camera import camera_motion
    from muss_builder.captions.facts import shot_scale
    from muss_builder.captions.lighting import lighting
    from muss_builder.captions.text import facts_shot_caption

    bgr = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR) for f in frames_rgb]
    scale, basis = shot_scale([("face", box) for box in face_boxes])
    motion = camera_motion(bgr, list(times)) if len(bgr) >= 2 else None
    facts = {
        "scale": scale,
        "scale_basis": basis,
        "camera": motion.to_dict() if motion else None,
        "lighting": lighting(bgr).to_dict(),
        "n_people": n_people,
        "subjects": [{"id": s} for s in subjects],
        "transition_in": transition_in,
    }
    return facts_shot_caption(facts)
