"""The determinism mode a film record states follows the config and the machine."""

from __future__ import annotations

import pytest

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.determinism import determinism_mode


def _with(config: PipelineConfig, section: str, **values) -> PipelineConfig:
    data = config.model_dump()
    node = data
    *parents, leaf = section.split(".")
    for name in parents:
        node = node[name]
    node[leaf] |= values
    return PipelineConfig.model_validate(data)


def test_default_pipeline_is_bitexact_on_a_cpu_machine_only() -> None:
    default = load_pipeline("default")
    assert determinism_mode(default, gpu=False) == "bitexact-cpu"
    # faces (onnxruntime) and TransNetV2 take a visible GPU when their device is "auto"
    assert determinism_mode(default, gpu=True) == "gpu-nondeterministic"


@pytest.mark.parametrize(
    ("section", "values", "gpu", "mode"),
    [
        ("subjects.faces", {"device": "cuda"}, False, "gpu-nondeterministic"),
        ("captions", {"backend": "openai", "model": "m"}, False, "model-nondeterministic"),
        ("captions", {"backend": "transformers", "model": "m"}, False, "model-nondeterministic"),
    ],
)
def test_mode_of_each_model_setting(section, values, gpu, mode) -> None:
    assert determinism_mode(_with(load_pipeline("default"), section, **values), gpu=gpu) == mode


def test_all_cpu_devices_stay_bitexact_with_a_gpu_in_the_machine() -> None:
    config = _with(load_pipeline("default"), "subjects.faces", device="cpu")
    config = _with(config, "shots.transnetv2", device="cpu")
    assert determinism_mode(config, gpu=True) == "bitexact-cpu"


def test_nvenc_clips_are_gpu_nondeterministic_where_a_gpu_encodes_them() -> None:
    config = _with(load_pipeline("default"), "subjects.faces", device="cpu")
    config = _with(config, "shots.transnetv2", device="cpu")
    config = _with(config, "clips", encoder="h264_nvenc")
    assert determinism_mode(config, gpu=True) == "gpu-nondeterministic"
    assert determinism_mode(config, gpu=False) == "bitexact-cpu"  # the x264 fallback
