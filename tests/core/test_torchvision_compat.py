"""The torchvision compat step: a torchvision whose compiled ops do not load beside this torch
(PyPI's CUDA wheel beside the CPU torch, as the test environment installs) still lets
transformers build image and video processors; the matching build or none is left alone."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from muss_builder.core import torchvision_compat

needs_torchvision = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed"
)


def _python(code: str) -> subprocess.CompletedProcess:
    """A fresh interpreter: what was imported in this one does not hide what a process sees."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@needs_torchvision
def test_transformers_processors_import_after_the_step_whatever_the_build() -> None:
    plain = _python("import torchvision")
    stepped = _python(
        "from muss_builder.core.torchvision_compat import prepare_torchvision\n"
        "state = prepare_torchvision()\n"
        "import torch, torchvision, torchvision.transforms.v2 as T\n"
        "from transformers import AutoImageProcessor, AutoVideoProcessor\n"
        "from transformers.models.qwen2_vl import Qwen2VLVideoProcessor\n"
        "frames = torch.zeros(2, 3, 28, 28)\n"
        "try:\n"
        "    torchvision.ops.nms(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.ones(1), 0.5)\n"
        "    nms = 'ran'\n"
        "except Exception:\n"
        "    nms = 'raised'\n"
        "print(state, nms, tuple(T.Resize((14, 14))(frames).shape))\n"
    )
    assert stepped.returncode == 0, stepped.stderr[-2000:]
    state, nms, shape = stepped.stdout.split(maxsplit=2)
    assert shape.strip() == "(2, 3, 14, 14)"
    # no kernel is faked: beside the wrong torch, nms fails instead of answering wrongly
    assert (state, nms) in {("native", "ran"), ("python-only", "raised")}
    if plain.returncode == 0:  # the build matching this torch: untouched
        assert state == "native"
    else:  # the failure the step exists for, and only that one
        assert "torchvision::nms" in plain.stderr
        assert state == "python-only"


def test_an_absent_torchvision_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torchvision" else real(name, *a),
    )
    # the uncached function: this process's own answer stays cached for the other tests
    assert torchvision_compat.prepare_torchvision.__wrapped__() == "absent"
