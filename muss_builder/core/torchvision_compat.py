"""A torchvision whose compiled ops do not load beside this torch, made importable.

transformers imports torchvision for every image and video processor as soon as it is
installed (the Qwen-VL video processors cannot run without it). PyPI's torchvision wheel is
built against the CUDA torch wheel; beside a CPU build of the same torch version (what a CPU
machine installs) its compiled library does not load, and ``import torchvision`` then fails on
two fake-kernel registrations it makes unguarded (``torchvision::nms``, ``torchvision::qnms``):
``RuntimeError: operator torchvision::nms does not exist``. Every transformers image processor
(CLIP, SigLIP, DINOv2, DETR, LLaVA) fails with it, not only the video ones.

``prepare_torchvision()`` declares those two op schemas (no kernel) when, and only when, the
import fails that way, and imports torchvision again. Its pure-Python transforms, all that
transformers' processors use, then work; calling ``nms`` itself still fails, loudly. A
torchvision that imports (the matching build, or none installed) is left untouched. Call it
before ``from transformers import ...`` of anything that may build a processor.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from typing import Any

_SCHEMAS = ("nms", "qnms")  # the two ops torchvision registers fake kernels for at import
_kept: list[Any] = []  # a torch Library that is dropped unregisters its schemas


@functools.cache  # once per process: a second try would find the schemas declared ("native")
def prepare_torchvision() -> str:
    """Make ``import torchvision`` work if it can; returns what was found: ``"absent"``,
    ``"native"`` (it imports as is), ``"python-only"`` (its compiled ops do not load beside
    this torch: the schemas were declared) or ``"broken: <why>"``."""
    if importlib.util.find_spec("torchvision") is None:
        return "absent"
    import torch

    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            return f"broken: {str(err).splitlines()[0]}"
        library = torch.library.Library("torchvision", "DEF")
        for op in _SCHEMAS:
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _kept.append(library)
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]  # the failed import left half-built modules behind
        try:
            import torchvision  # noqa: F401
        except Exception as again:  # said, not raised: doctor reports it, a stage's setup fails
            return f"broken: {str(again).splitlines()[0]}"
        return "python-only"
    except Exception as err:  # an ImportError of its own dependencies, say: said, not raised
        return f"broken: {str(err).splitlines()[0]}"
    return "native"
