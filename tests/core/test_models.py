"""Model resolution (a folder or the local cache, never the network), device choice and the
per-process model cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from muss_builder.core.models import (
    DeviceUnavailableError,
    ModelNotFoundError,
    load_pretrained,
    loaded_model,
    pick_device,
    resolve_face_pack,
    resolve_model,
)


def test_a_local_folder_is_used_as_it_is(tmp_path: Path) -> None:
    from transformers import AutoConfig, BertConfig

    folder = tmp_path / "tiny-bert"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(folder)
    assert resolve_model(str(folder)) == (str(folder), f"folder {folder}")
    config = load_pretrained(AutoConfig, str(folder))
    assert config.model_type == "bert" and config.hidden_size == 8


def test_a_missing_folder_is_a_clear_error_at_once(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError, match="never downloads models") as info:
        resolve_model(str(missing))
    assert str(missing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)  # what callers caught before


def test_a_hub_id_is_looked_up_in_the_local_cache_only(monkeypatch, tmp_path: Path) -> None:
    from transformers import AutoConfig

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    source, described = resolve_model("nobody-here/no-such-model")
    assert source == "nobody-here/no-such-model" and "local Hugging Face cache" in described
    with pytest.raises(ModelNotFoundError) as info:
        load_pretrained(AutoConfig, "nobody-here/no-such-model")
    message = str(info.value)
    assert "'nobody-here/no-such-model'" in message
    assert "local Hugging Face cache" in message and "never downloads models" in message


def test_an_empty_folder_is_no_checkpoint(tmp_path: Path) -> None:
    from transformers import AutoImageProcessor

    with pytest.raises(ModelNotFoundError, match=f"folder {tmp_path}"):
        load_pretrained(AutoImageProcessor, str(tmp_path))


def test_face_packs(tmp_path: Path) -> None:
    offline = resolve_face_pack("offline")
    assert sorted(p.name for p in offline.glob("*.onnx")) == [
        "scrfd_500m_bnkps.onnx",
        "w600k_mbf.onnx",
    ]
    with pytest.raises(ModelNotFoundError, match="never downloads models") as info:
        resolve_face_pack(str(tmp_path / "nope"))
    assert "'" + str(tmp_path / "nope") + "'" in str(info.value)


def test_device_choice_on_this_machine() -> None:
    import torch

    has_gpu = torch.cuda.is_available()
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if has_gpu else "cpu")
    if has_gpu:
        assert pick_device("cuda") == "cuda"
        return
    with pytest.raises(DeviceUnavailableError, match="TransNetV2 device 'cuda' requested"):
        pick_device("cuda", "TransNetV2")
    # callers caught RuntimeError (TransNetV2) or ValueError (train sample): both still work
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:1")
    with pytest.raises(RuntimeError):
        pick_device("cuda")


def test_a_model_is_loaded_once_per_key_and_failures_are_not_kept() -> None:
    loads: list[str] = []

    def load(name: str) -> object:
        loads.append(name)
        return object()

    first = loaded_model("test-core:a", lambda: load("a"))
    assert loaded_model("test-core:a", lambda: load("a")) is first
    assert loaded_model("test-core:b", lambda: load("b")) is not first
    assert loads == ["a", "b"]

    def broken() -> object:
        loads.append("broken")
        raise OSError("no weights")

    for _ in range(2):  # tried again, and raising again, on the next call
        with pytest.raises(OSError, match="no weights"):
            loaded_model("test-core:broken", broken)
    assert loads == ["a", "b", "broken", "broken"]
