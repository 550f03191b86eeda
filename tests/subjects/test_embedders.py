"""Crop embedders: tiny randomly initialised DINOv2 and SigLIP checkpoints saved to and loaded
from local folders (``conftest.py``; nothing is downloaded), and the colour-histogram
fallback."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.subjects.embedders import ColourHistogramEmbedder, CropEmbedder


def astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def crops() -> list[np.ndarray]:
    image = astronaut()
    return [image[0:200, 100:250], image[300:500, 0:120], image[0:200, 100:250].copy()]


def test_dinov2_embedder_uses_the_cls_token(dinov2_dir: Path) -> None:
    import torch

    emb = CropEmbedder(str(dinov2_dir), device="cpu", batch_size=2)
    out = emb.embed(crops())
    assert out.shape == (3, 32) and out.dtype == np.float32 and emb.dim == 32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out[0], out[2])  # the same crop, in another batch
    assert float(out[0] @ out[1]) < 0.999
    assert np.array_equal(out, emb.embed(crops()))  # deterministic
    assert emb.embed([]).shape == (0, 32)
    # the branch taken: no get_image_features, so the CLS token of last_hidden_state
    assert not emb._image_features
    inputs = emb._processor(images=[crops()[1][..., ::-1].copy()], return_tensors="pt")
    with torch.inference_mode():
        cls = emb._model(**inputs).last_hidden_state[0, 0].numpy()
    assert np.allclose(out[1], cls / np.linalg.norm(cls), atol=1e-5)


def test_siglip_embedder_uses_image_features(siglip_dir: Path) -> None:
    import torch

    emb = CropEmbedder(str(siglip_dir), device="cpu")
    out = emb.embed(crops())
    assert emb._image_features
    assert out.shape == (3, 32) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out[0], out[2]) and float(out[0] @ out[1]) < 0.999
    inputs = emb._processor(images=[crops()[1][..., ::-1].copy()], return_tensors="pt")
    with torch.inference_mode():
        feats = emb._model.get_image_features(**inputs)
    feats = (feats if torch.is_tensor(feats) else feats.pooler_output)[0].numpy()
    assert np.allclose(out[1], feats / np.linalg.norm(feats), atol=1e-5)


def test_colour_histogram_embedder() -> None:
    emb = ColourHistogramEmbedder()
    red, blue = np.zeros((64, 32, 3), np.uint8), np.zeros((64, 32, 3), np.uint8)
    red[:] = (0, 0, 200)
    blue[:] = (200, 0, 0)
    red_over_blue = np.concatenate([red[:32], blue[32:]])
    blue_over_red = np.concatenate([blue[:32], red[32:]])
    out = emb.embed([red, blue, red_over_blue, blue_over_red, red.copy()])
    assert out.shape == (5, 512) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert float(out[0] @ out[4]) == pytest.approx(1.0)
    assert float(out[0] @ out[1]) < 0.1
    # same colours, swapped between top and bottom: told apart
    assert float(out[2] @ out[3]) < 0.1
    assert emb.embed([]).shape == (0, 512)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        CropEmbedder(str(tmp_path / "dinov2-small")).setup()
    # a hub id that is not in the local cache: looked up there only, never fetched
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        CropEmbedder("nobody-here/no-such-model").setup()
    # an empty folder is not a checkpoint either
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        CropEmbedder(str(tmp_path)).setup()
