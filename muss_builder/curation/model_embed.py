"""Image (and text) embeddings for the model filters, from a checkpoint on disk.

``ImageTextModel`` loads any transformers checkpoint through ``muss_builder.core.models``
(a folder or the local Hugging Face cache, never the network). Which vector:

- a joint image-text model (CLIP, SigLIP: ``get_image_features``) gives its projected image
  embedding, the space its text embeddings live in and the one LAION's aesthetic heads were
  trained on;
- any other image model (DINOv2, ViT) gives the CLS token of ``last_hidden_state``: fine for
  the consistency filter, and the alignment filter refuses it (no text tower).

Every vector comes back L2-normalised unless asked for raw (an aesthetic head trained on raw
projections). Images are BGR arrays (OpenCV), converted to RGB for the processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from muss_builder.core.models import load_pretrained, pick_device
from muss_builder.core.torchvision_compat import prepare_torchvision


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., 2::-1])


class ImageTextModel:
    """One loaded checkpoint: ``embed_images`` always, ``embed_texts`` for CLIP / SigLIP."""

    def __init__(self, model: str, device: str = "auto", batch_size: int = 16) -> None:
        prepare_torchvision()  # before transformers builds a processor
        from transformers import AutoImageProcessor, AutoModel

        self.model = model
        self.batch_size = batch_size
        self.device = pick_device(device, f"model filter ({model})")
        self._processor = load_pretrained(AutoImageProcessor, model)
        self._network: Any = load_pretrained(AutoModel, model).to(self.device).eval()
        self.joint = all(
            callable(getattr(self._network, name, None))
            for name in ("get_image_features", "get_text_features")
        )
        self._image_features = callable(getattr(self._network, "get_image_features", None))
        self._tokenizer: Any = None  # loaded on the first text: DINOv2 has none
        # one grey image tells the embedding size (an aesthetic head is checked against it)
        self.dim = int(self._image_batch([np.full((32, 32, 3), 128, np.uint8)]).shape[1])

    def embed_images(self, images_bgr: Sequence[np.ndarray], normalize: bool = True) -> np.ndarray:
        """[N, dim] float32 for N BGR images, ``batch_size`` at a time."""
        if not images_bgr:
            return np.zeros((0, self.dim), np.float32)
        parts = [
            self._image_batch(images_bgr[i : i + self.batch_size])
            for i in range(0, len(images_bgr), self.batch_size)
        ]
        out = np.concatenate(parts)
        return unit_rows(out) if normalize else out

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """[N, dim] unit rows; a caption longer than the text tower's positions is cut there
        (77 tokens for CLIP, 64 for SigLIP: the start of a caption names the main content)."""
        import torch

        if not self.joint:
            raise ValueError(
                f"{self.model}: {type(self._network).__name__} has no text tower "
                "(get_text_features); caption alignment needs a CLIP or SigLIP checkpoint"
            )
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = load_pretrained(AutoTokenizer, self.model)
        config = self._network.config
        # SigLIP was trained on text padded to its full length; CLIP pools its end token
        siglip = "siglip" in str(getattr(config, "model_type", ""))
        length = getattr(getattr(config, "text_config", None), "max_position_embeddings", 77)
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self._tokenizer(
                list(texts[i : i + self.batch_size]),
                padding="max_length" if siglip else True,
                truncation=True,
                max_length=length,
                return_tensors="pt",
            )
            tokens = {k: v.to(self.device) for k, v in tokens.items() if k != "token_type_ids"}
            with torch.inference_mode():
                feats = _features(self._network.get_text_features(**tokens))
            out.append(feats.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return unit_rows(np.concatenate(out))

    def _image_batch(self, images_bgr: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self._processor(images=[bgr_to_rgb(i) for i in images_bgr], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device)
        with torch.inference_mode():
            if self._image_features:
                feats = _features(self._network.get_image_features(pixel_values=pixels))
            else:
                feats = self._network(pixel_values=pixels).last_hidden_state[:, 0]
        return feats.float().cpu().numpy()


def _features(out: Any) -> Any:
    """transformers 4 returns the features, 5 an output whose pooler_output they are."""
    import torch

    return out if torch.is_tensor(out) else out.pooler_output
