"""The aesthetic head file: LAION's MLP layout and a plain linear head load and score exactly
as torch runs them; heads of the wrong shape fail with a message saying what is wrong.

The heads are random: these tests check the arithmetic and the file handling, not taste."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from muss_builder.core.models import ModelNotFoundError
from muss_builder.curation.aesthetic import AestheticHeadError, load_head


class LaionMLP(nn.Module):
    """The improved-aesthetic-predictor's module (simple_inference.py), input size free."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def save_laion_head(path: Path, dim: int, seed: int = 0) -> LaionMLP:
    torch.manual_seed(seed)
    mlp = LaionMLP(dim).eval()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in mlp.state_dict().items()}, str(path))
    else:
        torch.save(mlp.state_dict(), path)
    return mlp


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_the_laion_mlp_layout_scores_as_torch_does(tmp_path: Path, suffix: str) -> None:
    mlp = save_laion_head(tmp_path / f"head{suffix}", 24)
    head = load_head(tmp_path / f"head{suffix}")
    assert head.input_dim == 24 and len(head.layers) == 5
    x = torch.nn.functional.normalize(torch.randn(7, 24), dim=1)
    with torch.no_grad():
        expected = mlp(x)[:, 0].numpy()
    np.testing.assert_allclose(head.score(x.numpy()), expected, rtol=1e-5, atol=1e-6)


def test_a_plain_linear_head_and_a_lightning_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    linear = nn.Linear(24, 1)
    torch.save({"state_dict": linear.state_dict(), "epoch": 3}, tmp_path / "linear.ckpt")
    head = load_head(tmp_path / "linear.ckpt")
    x = torch.randn(5, 24)
    with torch.no_grad():
        expected = linear(x)[:, 0].numpy()
    np.testing.assert_allclose(head.score(x.numpy()), expected, rtol=1e-5, atol=1e-6)


def test_layers_follow_numeric_order_and_relu_is_applied_between_them(tmp_path: Path) -> None:
    torch.manual_seed(2)
    # 12 modules: names layers.0 .. layers.11; lexical order would put layers.10 before 2
    mods: list[nn.Module] = []
    sizes = [24, 20, 16, 12, 8, 4, 1]
    for a, b in itertools.pairwise(sizes):
        mods += [nn.Linear(a, b), nn.ReLU()]
    seq = nn.Sequential(*mods[:-1])  # no ReLU after the last layer
    torch.save({"layers." + k: v for k, v in seq.state_dict().items()}, tmp_path / "h.pth")
    x = torch.randn(6, 24)
    with torch.no_grad():
        expected = seq(x)[:, 0].numpy()
    relu = load_head(tmp_path / "h.pth", activation="relu")
    np.testing.assert_allclose(relu.score(x.numpy()), expected, rtol=1e-5, atol=1e-6)
    plain = load_head(tmp_path / "h.pth")
    assert not np.allclose(plain.score(x.numpy()), expected, atol=1e-4)  # relu mattered


def test_heads_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    torch.save(nn.Linear(24, 3).state_dict(), tmp_path / "three.pth")
    with pytest.raises(AestheticHeadError, match="3 outputs, not one score"):
        load_head(tmp_path / "three.pth")
    broken = {"a.weight": torch.zeros(8, 24), "a.bias": torch.zeros(8)}
    broken |= {"b.weight": torch.zeros(1, 9), "b.bias": torch.zeros(1)}
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(AestheticHeadError, match="takes 9 inputs but the layer before gives 8"):
        load_head(tmp_path / "broken.pth")
    torch.save({"w.weight": torch.zeros(1, 4)}, tmp_path / "nobias.pth")
    with pytest.raises(AestheticHeadError, match="with a bias"):
        load_head(tmp_path / "nobias.pth")
    torch.save({"step": 3}, tmp_path / "empty.pth")
    with pytest.raises(AestheticHeadError, match="no linear layer"):
        load_head(tmp_path / "empty.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AestheticHeadError, match="not a torch state dict"):
        load_head(tmp_path / "junk.pth")
    save_laion_head(tmp_path / "laion.pth", 24)
    with pytest.raises(AestheticHeadError, match="takes 24-d embeddings"):
        load_head(tmp_path / "laion.pth").score(np.zeros((2, 16)))


def test_a_missing_head_file_says_where_it_looked(tmp_path: Path) -> None:
    where = re.escape(f"{tmp_path}/absent.pth not found")
    with pytest.raises(ModelNotFoundError, match=where + ".*ships no head"):
        load_head(tmp_path / "absent.pth")
