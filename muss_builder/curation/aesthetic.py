"""The aesthetic head: a user's file of linear layers over a unit image embedding.

No head ships with muss-builder (LAION's weights are theirs to hand out, and a head only means
something on the embedding model it was trained on); the user points the config at a file.
Accepted layouts (``.pth`` / ``.pt`` / ``.bin``: a torch state dict, read with
``weights_only=True``; ``.safetensors``; a ``{"state_dict": ...}`` checkpoint is unwrapped):

- LAION improved-aesthetic-predictor MLP (``sac+logos+ava1-l14-linearMSE.pth``): keys
  ``layers.0/2/4/6/7.{weight,bias}``, i.e. Linear(768, 1024) -> Linear(1024, 128) ->
  Linear(128, 64) -> Linear(64, 16) -> Linear(16, 1) with Dropout between (a no-op at
  inference) and NO activation: that is how LAION trained it, so none is applied unless the
  config asks for ``relu`` (a head you trained yourself with ReLUs between its layers);
- a plain linear head (LAION aesthetic predictor v1, ``sa_0_4_vit_l_14_linear.pth``, or a
  logistic/ridge probe you fit on your own labels): ``weight`` [1, D] and ``bias`` [1].

Layers are every ``*weight`` matrix with its ``*bias``, in the numeric order of their names
(``layers.10`` after ``layers.2``). The chain must connect (each layer's input is the previous
one's output) and end in one output; its first input size must equal the embedding model's
size (checked when both are loaded). Input: the L2-normalised image embedding, as LAION's
training did (``normalize: false`` feeds the raw projection instead).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from muss_builder.core.models import ModelNotFoundError


class AestheticHeadError(ValueError):
    """A head file whose tensors are not a chain of linear layers ending in one score."""


@dataclass(frozen=True)
class AestheticHead:
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weight [out, in], bias [out])
    activation: str = "none"  # between layers, never after the last
    source: str = ""

    @property
    def input_dim(self) -> int:
        return int(self.layers[0][0].shape[1])

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """[N] scores for [N, input_dim] embeddings (already normalised as the head expects)."""
        x = np.asarray(embeddings, np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise AestheticHeadError(
                f"aesthetic head {self.source} takes {self.input_dim}-d embeddings, got "
                f"shape {tuple(x.shape)}: the head was trained on another embedding model"
            )
        last = len(self.layers) - 1
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if i < last and self.activation == "relu":
                x = np.maximum(x, 0.0)
        return x[:, 0]


def load_head(path: str | Path, activation: str = "none") -> AestheticHead:
    """Read and check a head file (see the module doc for the layouts accepted)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelNotFoundError(
            f"aesthetic head file {file} not found: point filters.models.aesthetic.head at a "
            "local .pth or .safetensors file (e.g. LAION's sac+logos+ava1-l14-linearMSE.pth); "
            "muss-builder ships no head and never downloads one"
        )
    tensors = _read_tensors(file)
    return AestheticHead(_chain(tensors, file), activation, str(file))


def _read_tensors(file: Path) -> dict[str, np.ndarray]:
    if file.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(file)))
    import torch

    try:
        raw: Any = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip or "unsupported global" errors: not a state dict
        raise AestheticHeadError(f"aesthetic head {file} is not a torch state dict: {err}") from err
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]  # a training checkpoint around the weights
    if not isinstance(raw, Mapping):
        raise AestheticHeadError(f"aesthetic head {file} holds a {type(raw).__name__}, not a dict")
    return {str(k): v.detach().float().cpu().numpy() for k, v in raw.items() if torch.is_tensor(v)}


def _order(name: str) -> tuple[Any, ...]:
    """Numeric parts compare as numbers, so ``layers.10`` follows ``layers.2``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _chain(tensors: dict[str, np.ndarray], file: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    weights = sorted((k for k, v in tensors.items() if k.endswith("weight")), key=_order)
    layers = []
    for key in weights:
        weight = np.asarray(tensors[key], np.float64)
        bias_key = key[: -len("weight")] + "bias"
        if weight.ndim != 2 or bias_key not in tensors:
            raise AestheticHeadError(
                f"aesthetic head {file}: {key} {tuple(weight.shape)} is not a linear layer's "
                f"weight with a bias {bias_key!r} (a head is Linear layers only)"
            )
        bias = np.asarray(tensors[bias_key], np.float64).reshape(-1)
        if bias.shape[0] != weight.shape[0]:
            raise AestheticHeadError(
                f"aesthetic head {file}: {bias_key} has {bias.shape[0]} values for "
                f"{weight.shape[0]} outputs"
            )
        if layers and layers[-1][0].shape[0] != weight.shape[1]:
            raise AestheticHeadError(
                f"aesthetic head {file}: {key} takes {weight.shape[1]} inputs but the layer "
                f"before gives {layers[-1][0].shape[0]}"
            )
        layers.append((weight, bias))
    if not layers:
        raise AestheticHeadError(f"aesthetic head {file} holds no linear layer (no *weight key)")
    if layers[-1][0].shape[0] != 1:
        raise AestheticHeadError(
            f"aesthetic head {file} ends in {layers[-1][0].shape[0]} outputs, not one score"
        )
    return tuple(layers)
