"""A build that asks for NVDEC and NVENC on a machine without them: every film is built on
the CPU, and the warning is in the film's notes (the build log) and in stats.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from muss_builder.config import PipelineConfig
from muss_builder.core.encoders import CPU_H264, GPU_H264
from muss_builder.media import gpu
from muss_builder.runtime.build import build
from muss_builder.testing.synthetic_films import make_film


def test_gpu_media_asked_on_a_cpu_machine_falls_back_with_a_warning(
    tmp_path: Path, tiny_config: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "gpu_visible", lambda: False)
    data = tiny_config.model_dump()
    data["media"]["decoder"] = "nvdec"
    data["clips"]["encoder"] = GPU_H264
    config = PipelineConfig.model_validate(data)
    film = make_film(tmp_path / "reel.mp4", (30, 26, 34), fps=24).path
    out = tmp_path / "out"
    summary = build([str(film)], out, config, executor="inline")
    assert [r.status for r in summary.results] == ["ok"]
    (warnings,) = json.loads((out / "stats.json").read_text())["warnings"].values()
    assert any(w.startswith("media.decoder nvdec: no GPU is visible") for w in warnings)
    assert any(w.startswith(f"clips.encoder {GPU_H264}") and CPU_H264 in w for w in warnings)
    assert len(warnings) == 2  # once per film, not once per clip
    (log,) = (out / "logs").glob("build-*.log")
    assert f"warning: clips.encoder {GPU_H264}" in log.read_text()
