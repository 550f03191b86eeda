"""``doctor`` and the build's preflight: one test per missing piece, and a passing doctor on
the shipped configs."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.core.encoders import CPU_H264, GPU_H264
from muss_builder.doctor import PreflightError, configured_models, preflight, run_doctor
from muss_builder.doctor.checks import check_ffmpeg, check_output, check_torchvision
from muss_builder.doctor.loading import check_model
from muss_builder.media import gpu
from muss_builder.runtime.build import build
from muss_builder.runtime.stage_base import StageSetupError
from muss_builder.testing.synthetic_films import make_film

runner = CliRunner()


def with_(config: PipelineConfig, **sections: dict) -> PipelineConfig:
    """``config`` with sections deep-merged (one level below the section)."""
    data = config.model_dump()
    for name, values in sections.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(data[name].get(key), dict):
                data[name][key] |= value
            else:
                data[name][key] = value
    return PipelineConfig.model_validate(data)


def by_name(checks: list, name: str):
    (found,) = [c for c in checks if c.name == name]
    return found


def fake_hub_model(cache: Path, repo: str, config: dict, weights: bool = True) -> Path:
    """A hub id in a Hugging Face cache laid out as huggingface_hub writes it."""
    folder = cache / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0" * 40)
    (snapshot / "config.json").write_text(json.dumps(config))
    (snapshot / "README.md").write_text("---\nlicense: apache-2.0\n---\n# a model\n")
    if weights:
        (snapshot / "model.safetensors").write_bytes(b"\0" * 1000)
    return snapshot


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "gpu_visible", lambda: False)


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_doctor_passes_on_the_shipped_configs(tmp_path: Path, name: str) -> None:
    checks = run_doctor(load_pipeline(name), out=str(tmp_path / "out"))
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    names = {c.name for c in checks}
    assert {"ffmpeg", "ffprobe", f"encoder {CPU_H264}", "ray", "output store"} <= names
    assert {"model shots.detector", "model subjects.faces.pack"} <= names
    faces = by_name(checks, "model subjects.faces.pack")
    assert (
        "non-commercial" in faces.detail and "MB" in faces.detail and "device cpu" in faces.detail
    )
    assert not (tmp_path / "out").exists()  # checked, not created
    preflight(load_pipeline(name))  # the build's part passes too


def test_the_doctor_command_prints_a_table_and_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "-c", "tiny", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output and "ffmpeg" in result.output
    result = runner.invoke(app, ["doctor", "-c", "tiny", "--json"])
    document = json.loads(result.output)
    assert result.exit_code == 0 and document["ok"] is True
    assert {"name", "ok", "detail", "fix"} <= set(document["checks"][0])


def test_a_missing_model_path_is_named_with_what_to_do(tmp_path: Path, tiny_config) -> None:
    missing = tmp_path / "no-such-detr"
    config = with_(tiny_config, subjects={"objects": {"enabled": True,
                                                      "detector_model": str(missing)}})  # fmt: skip
    check = by_name(run_doctor(config), "model subjects.objects.detector_model")
    assert not check.ok and str(missing) in check.detail and "put the checkpoint" in check.fix
    with pytest.raises(PreflightError) as info:
        preflight(config)
    assert info.value.stage == "subjects" and str(missing) in str(info.value)
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(config.model_dump()))  # JSON is YAML
    result = runner.invoke(app, ["doctor", "-c", str(path)])
    assert result.exit_code == 1 and "MISSING" in result.output and "problem" in result.output


def test_a_hub_id_not_in_the_local_cache(empty_hf_cache: Path, tiny_config) -> None:
    config = with_(tiny_config, captions={"backend": "transformers", "model": "nobody/no-vlm"})
    check = by_name(run_doctor(config), "model captions.model")
    assert not check.ok and "'nobody/no-vlm'" in check.detail
    assert str(empty_hf_cache / "hub") in check.detail  # where it was looked for
    assert "hf download nobody/no-vlm" in check.fix
    with pytest.raises(PreflightError) as info:
        preflight(config)
    assert info.value.stage == "captions" and "hf download nobody/no-vlm" in str(info.value)


def test_a_cached_hub_model_reports_size_licence_and_architecture(
    empty_hf_cache: Path, tiny_config
) -> None:
    fake_hub_model(empty_hf_cache, "someone/dino", {"model_type": "bert", "hidden_size": 8,
                   "num_hidden_layers": 1, "num_attention_heads": 2})  # fmt: skip
    config = with_(tiny_config, filters={"duplicates": {"embedder": "someone/dino"}})
    (spec,) = [s for s in configured_models(config) if s.role == "filters.duplicates.embedder"]
    check = check_model(spec)
    assert check.ok, check
    assert "licence apache-2.0" in check.detail and "device cpu" in check.detail
    assert "bert" in check.detail
    preflight(config)


def test_the_wrong_architecture_and_missing_weights(empty_hf_cache: Path, tiny_config) -> None:
    fake_hub_model(empty_hf_cache, "someone/bert", {"model_type": "bert"})
    fake_hub_model(empty_hf_cache, "someone/detr", {"model_type": "detr"}, weights=False)
    bert = with_(tiny_config, subjects={"objects": {"enabled": True,
                                                    "detector_model": "someone/bert"}})  # fmt: skip
    check = by_name(run_doctor(bert), "model subjects.objects.detector_model")
    assert not check.ok and "not a object detection model" in check.detail
    detr = with_(tiny_config, subjects={"objects": {"enabled": True,
                                                    "detector_model": "someone/detr"}})  # fmt: skip
    check = by_name(run_doctor(detr), "model subjects.objects.detector_model")
    assert not check.ok and "no weights" in check.detail


def test_a_model_asking_for_a_gpu_on_a_machine_without_one(tiny_config) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    config = with_(tiny_config, subjects={"faces": {"device": "cuda"}})
    check = by_name(run_doctor(config), "model subjects.faces.pack")
    assert not check.ok and "CUDA is not available" in check.detail and "cpu" in check.fix


def test_an_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check = check_output(str(blocker / "out"))
    assert not check.ok and "not a folder" in check.detail
    assert check_output(str(tmp_path / "new" / "out")).ok


def test_an_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only folder (made read-only by its mode when not root, else by the probe)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through modes: the probe write is made to fail
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(folder))

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    else:
        folder.chmod(0o500)
    check = check_output(str(folder))
    folder.chmod(0o700)
    assert not check.ok and "Permission denied" in check.detail and "writable" in check.fix


def test_a_remote_output_store(s3_prefix: str) -> None:
    check = check_output(s3_prefix)
    assert check.ok, check
    assert "remote" in check.detail


def test_ffmpeg_not_on_path(tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch) -> None:
    film = make_film(tmp_path / "film.mp4", (30, 26), fps=24).path
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    checks = check_ffmpeg()
    assert [c.ok for c in checks] == [False, False]
    assert "not found on PATH" in checks[0].detail and "apt-get install ffmpeg" in checks[0].fix
    with pytest.raises(PreflightError) as info:
        preflight(tiny_config)
    assert info.value.stage == "media"
    # the build stops before its first film, with one line
    out = tmp_path / "out"
    with pytest.raises(StageSetupError) as stopped:
        build([str(film)], out, tiny_config, executor="inline")
    assert str(stopped.value).startswith("stage media cannot start: ffmpeg not found on PATH")
    assert not list((out / "films").glob("*.json"))


def test_nvenc_and_nvdec_asked_for_on_a_machine_without_them(tiny_config, no_gpu) -> None:
    config = with_(tiny_config, clips={"encoder": GPU_H264}, media={"decoder": "nvdec"})
    checks = run_doctor(config)
    nvenc = by_name(checks, f"encoder {GPU_H264}")
    assert not nvenc.ok and CPU_H264 in nvenc.fix
    nvdec = by_name(checks, "decoder nvdec")
    assert not nvdec.ok and "no GPU is visible" in nvdec.detail
    assert by_name(checks, f"encoder {CPU_H264}").ok
    auto = by_name(run_doctor(with_(tiny_config, media={"decoder": "auto"})), "decoder auto")
    assert auto.ok and "decoded on the CPU" in auto.detail  # auto: a CPU node is no failure
    preflight(config)  # the build falls back and goes on: not a stop


def test_stage_resources_that_no_node_has(tiny_config, no_gpu) -> None:
    config = with_(
        tiny_config,
        runtime={"executor": "ray", "stages": {"captions": {"num_cpus": 1, "num_gpus": 1}}},
    )
    checks = run_doctor(config)
    stage = by_name(checks, "stage captions")
    assert not stage.ok and "largest node has 0" in stage.detail
    assert by_name(checks, "stage analyse").ok


def test_a_caption_server_that_is_down(tiny_config) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = with_(
        tiny_config,
        captions={"backend": "openai", "model": "qwen", "base_url": f"http://127.0.0.1:{port}/v1"},
    )
    check = by_name(run_doctor(config), "caption server")
    assert not check.ok and f"127.0.0.1:{port}" in check.detail and "vllm serve" in check.fix
    preflight(config)  # a server may come up after the build starts: not a stop


def test_an_aesthetic_head_that_is_not_one(tmp_path: Path, tiny_config) -> None:
    head = tmp_path / "head.pth"
    head.write_bytes(b"not a state dict")
    config = with_(tiny_config, filters={"models": {"aesthetic": {"enabled": True,
                                                                  "head": str(head)}}})  # fmt: skip
    (spec,) = [s for s in configured_models(config) if s.role.endswith("aesthetic.head")]
    check = check_model(spec)
    assert not check.ok and "not an aesthetic head" in check.detail
    missing = with_(tiny_config, filters={"models": {"aesthetic": {"enabled": True,
                    "head": str(tmp_path / "none.pth")}}})  # fmt: skip
    (spec,) = [s for s in configured_models(missing) if s.role.endswith("aesthetic.head")]
    assert not check_model(spec).ok and "none.pth not found" in check_model(spec).detail


def test_a_ray_cluster_that_does_not_answer(tiny_config, monkeypatch: pytest.MonkeyPatch) -> None:
    from muss_builder.doctor import checks

    def refuse(address: str):
        raise ConnectionError(f"could not connect to {address}")

    monkeypatch.setattr(checks, "_connect_ray", refuse)
    found = {c.name: c for c in run_doctor(tiny_config, ray_address="10.0.0.9:6379")}
    assert not found["ray"].ok and "10.0.0.9:6379" in found["ray"].detail
    assert "ray start --head" in found["ray"].fix
    assert not found["stage resources"].ok  # unknown without the cluster's answer

    node = {"CPU": 64.0, "GPU": 8.0}
    monkeypatch.setattr(checks, "_connect_ray", lambda address: (node, [node]))
    found = {c.name: c for c in run_doctor(tiny_config, ray_address="auto")}
    assert found["ray"].ok and "8 GPUs" in found["ray"].detail
    assert all(c.ok for name, c in found.items() if name.startswith("stage "))


def test_a_build_stops_at_start_on_a_hub_id_not_in_the_cache(
    tmp_path: Path, empty_hf_cache: Path, tiny_config
) -> None:
    """Before any film and before any model loads: the stage, the model, where it was looked
    for and what to do, on one line."""
    film = make_film(tmp_path / "film.mp4", (30, 26), fps=24).path
    config = with_(tiny_config, captions={"backend": "transformers", "model": "nobody/no-vlm"})
    out = tmp_path / "out"
    with pytest.raises(StageSetupError) as stopped:
        build([str(film)], out, config, executor="inline")
    message = str(stopped.value)
    assert message.startswith("stage captions cannot start: ModelNotFoundError: ")
    assert "'nobody/no-vlm'" in message and str(empty_hf_cache / "hub") in message
    assert "hf download nobody/no-vlm" in message and "\n" not in message
    assert not list((out / "films").glob("*.json"))


def test_torchvision_is_checked_where_a_transformers_model_needs_it(
    tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muss_builder.doctor import checks

    assert check_torchvision(tiny_config) == []  # no transformers model: no row
    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    video = with_(tiny_config, captions={"enabled": True, "backend": "transformers",
                                         "model": str(qwen)})  # fmt: skip
    (row,) = check_torchvision(video)
    if importlib.util.find_spec("torchvision") is not None:  # the test environment's case
        assert row.ok and "beside torch" in row.detail, row
    monkeypatch.setattr(checks, "prepare_torchvision", lambda: "absent")
    (row,) = check_torchvision(video)
    assert not row.ok and str(qwen) in row.detail and "pip install" in row.fix
    image_only = tmp_path / "llava"
    image_only.mkdir()
    (image_only / "config.json").write_text(json.dumps({"model_type": "llava"}))
    (row,) = check_torchvision(with_(video, captions={"model": str(image_only)}))
    assert row.ok and "not installed" in row.detail  # only the video processors need it
    monkeypatch.setattr(checks, "prepare_torchvision", lambda: "broken: libc10 missing")
    (row,) = check_torchvision(video)
    assert not row.ok and "libc10 missing" in row.detail and "uninstall" in row.fix
