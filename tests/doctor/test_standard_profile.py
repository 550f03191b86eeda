"""pipelines/standard.yaml: the GPU profile validates, names the models MuSS-style curation
uses, fits one 8-GPU node, and doctor lists each model with what to do when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from muss_builder.config import load_pipeline
from muss_builder.doctor import configured_models, run_doctor
from muss_builder.doctor.checks import check_resources

HUB_MODELS = {
    "subjects.objects.detector_model": "facebook/detr-resnet-50",
    "subjects.objects.embedder_model": "facebook/dinov2-base",
    "filters.duplicates.embedder": "facebook/dinov2-base",
    "filters.models.aesthetic.model": "openai/clip-vit-large-patch14",
    "filters.models.consistency.model": "openai/clip-vit-large-patch14",
    "filters.models.alignment.model": "openai/clip-vit-large-patch14",
    "captions.model": "Qwen/Qwen3-VL-8B-Instruct",
}


def test_the_standard_profile_validates_and_names_the_models() -> None:
    config = load_pipeline("standard")
    assert config.name == "standard"
    assert config.captions.backend == "transformers"
    assert config.subjects.faces.pack == "buffalo_l"
    specs = {s.role: s for s in configured_models(config)}
    assert {role: specs[role].model for role in HUB_MODELS} == HUB_MODELS
    assert all(specs[role].kind == "hf" for role in HUB_MODELS)
    assert specs["filters.models.aesthetic.head"].kind == "file"
    assert specs["subjects.faces.pack"].kind == "face_pack"
    assert config.media.decoder == "auto"


def test_the_standard_profile_fits_one_8_gpu_node() -> None:
    config = load_pipeline("standard")
    stages = config.runtime.stages
    pools = sum((s.actors or 0) * s.num_gpus for s in (stages.subjects, stages.captions))
    assert pools <= 7  # a GPU left for the analyse and clips tasks' shares
    node = {"CPU": 96.0, "GPU": 8.0}
    assert all(c.ok for c in check_resources(config, (node, [node])))
    small = {"CPU": 16.0, "GPU": 1.0}
    failed = [c for c in check_resources(config, (small, [small])) if not c.ok]
    assert {c.name for c in failed} == {"stage subjects", "stage captions"}


def test_doctor_on_a_machine_without_the_models_says_what_to_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.insightface, no head file
    checks = {c.name: c for c in run_doctor(load_pipeline("standard"))}
    for role, model in HUB_MODELS.items():
        check = checks[f"model {role}"]
        assert not check.ok and f"hf download {model}" in check.fix
    faces = checks["model subjects.faces.pack"]
    assert not faces.ok and "~/.insightface/models/buffalo_l" in faces.fix
    head = checks["model filters.models.aesthetic.head"]
    assert not head.ok and "not found" in head.detail
