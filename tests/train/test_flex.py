"""FlexAttention path of the reference-masked self-attention: the same mask, the same model."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging

import pytest
import torch
import torch.nn.attention.flex_attention as torch_flex
import torch.nn.functional as F
from test_masks import random_layouts
from test_model import TINY, make_batch, multi_shot_input, plain_input
from torch.nn.attention.flex_attention import BlockMask, create_mask, flex_attention

from muss_builder.train import flex
from muss_builder.train.config import TrainConfig
from muss_builder.train.loop import _Dist, _sdpa_context, wrap_model
from muss_builder.train.masks import self_attention_mask, self_mask_allows_all
from muss_builder.train.model import MultiShotDiT
from muss_builder.train.presets import RopeConfig

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")

# (video shots per sample, reference shots per sample, tokens per reference)
MASK_CASES = [
    ([[0, 0, 1, 1]], [[1, 0, -1]], 1),  # refs of two shots and a padding slot
    ([[0, 1]], [[1, 1, -1]], 2),  # two subjects of one shot, then padding
    ([[0, 1], [0, 0]], [[0], [-1]], 1),  # per sample: a real ref, then only padding
    ([[0, 0, 1, 2, 2, 2], [0, 1, 1, 1, 2, 2]], [[2, 0, -1, 2], [-1, 1, 1, 0]], 3),
    ([[0, 0, 0]], [[-1, -1]], 4),  # padding only
    ([[3, 3]], [[3, 3]], 2),  # one shot, all real: nothing to hide
]


def _flex_mask(video_shots: torch.Tensor, ref_shots: torch.Tensor, per_ref: int) -> torch.Tensor:
    """The mask_mod evaluated on every (b, q, kv) cell: (B, 1, N, N) bool."""
    token_shot, token_ref = flex.token_indices(video_shots, ref_shots, per_ref)
    n = token_shot.shape[1]
    mask_mod = flex.self_attention_mask_mod(token_shot, token_ref)
    return create_mask(mask_mod, token_shot.shape[0], 1, n, n, device="cpu")


@pytest.mark.parametrize(("video", "refs", "per_ref"), MASK_CASES)
def test_mask_mod_is_the_dense_mask_cell_for_cell(video: list, refs: list, per_ref: int) -> None:
    video_shots, ref_shots = torch.tensor(video), torch.tensor(refs)
    dense = self_attention_mask(video_shots, ref_shots, per_ref)
    got = _flex_mask(video_shots, ref_shots, per_ref)
    if dense is None:
        assert got.all() and self_mask_allows_all(video_shots, ref_shots)
        assert flex.self_attention_block_mask(video_shots, ref_shots, per_ref) is None
    else:
        assert torch.equal(got, dense)
        assert not self_mask_allows_all(video_shots, ref_shots)


def test_mask_mod_matches_random_batches() -> None:
    for video_shots, ref_shots, per_ref in random_layouts(0, 200, (4, 9, 6), 4):
        dense = self_attention_mask(video_shots, ref_shots, per_ref)
        got = _flex_mask(video_shots, ref_shots, per_ref)
        assert self_mask_allows_all(video_shots, ref_shots) == (dense is None)
        assert torch.equal(got, dense if dense is not None else torch.ones_like(got))
        assert dense is None or not dense.all()  # an all-allowing mask is returned as None


def test_block_mask_attention_equals_masked_sdpa_across_partial_tiles() -> None:
    # 300 video + 3 x 30 reference tokens: 4 tiles of 128, the last one partial
    video_shots = torch.arange(3).repeat_interleave(100)[None].expand(2, -1)
    ref_shots = torch.tensor([[2, 0, -1], [1, 1, 0]])
    block_mask = flex.self_attention_block_mask(video_shots, ref_shots, 30)
    assert isinstance(block_mask, BlockMask) and block_mask.shape[-2:] == (390, 390)
    dense = self_attention_mask(video_shots, ref_shots, 30)
    q, k, v = torch.randn(3, 2, 2, 390, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        flex_attention(q, k, v, block_mask=block_mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=dense),
        rtol=1e-5,
        atol=1e-5,
    )


def test_auto_takes_flex_only_on_cuda_with_a_mask() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert flex.use_flex("auto", cuda, masked=True)
    assert not flex.use_flex("auto", cuda, masked=False)  # plain batches: flash SDPA
    assert not flex.use_flex("auto", cpu, masked=True)  # CPU keeps masked SDPA
    assert flex.use_flex("flex", cpu, masked=True)
    assert not flex.use_flex("flex", cuda, masked=False)
    for backend in ("flash", "efficient", "cudnn", "math"):
        assert not flex.use_flex(backend, cuda, masked=True)


def test_flex_refuses_what_it_cannot_serve() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert flex.flex_unsupported(128, cuda, needs_grad=True) is None  # Wan2.1-1.3B
    assert flex.flex_unsupported(32, cuda, needs_grad=True) is None  # the tiny preset
    assert flex.flex_unsupported(12, cuda, needs_grad=False) is not None  # below 16
    assert flex.flex_unsupported(96, cuda, needs_grad=False) is not None  # not a power of 2
    assert flex.flex_unsupported(12, cpu, needs_grad=False) is None  # the reference impl
    assert "backward" in (flex.flex_unsupported(32, cpu, needs_grad=True) or "")


def test_the_config_reaches_the_model() -> None:
    cfg = TrainConfig(attention="flex")
    assert isinstance(_sdpa_context(cfg), contextlib.nullcontext)  # SDPA picks the rest
    model = MultiShotDiT(TINY)
    assert model.attention == "auto"
    env = _Dist(rank=0, world=1, local_rank=0, device=torch.device("cpu"), started_group=False)
    assert wrap_model(model, cfg, env).attention == "flex"


def _larger_input() -> tuple[MultiShotDiT, torch.Tensor, torch.Tensor, object]:
    """Tiny preset (head dim 32), 3 shots, 600 video + 3 x 9 reference tokens (5 tiles of
    128, the last partial); each sample has a padding slot beside real ones."""
    torch.manual_seed(0)
    model = MultiShotDiT(dataclasses.replace(TINY, num_layers=2), RopeConfig(phi=0.5))
    torch.nn.init.normal_(model.proj_out.weight, std=0.02)  # Wan zeroes it: see test_model
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 16, 30, generator=gen)
    batch = make_batch(
        x,
        shot_index=[[0, 0, 1, 2, 2], [0, 1, 1, 1, 2]],
        text_segments=[[0, 0, 1, 2, 3, 3, -1]] * 2,
        ref_shots=[[0, 2, -1], [2, -1, 1]],
        ref_frames=[[1, 4, 0], [4, 0, 2]],
        ref_hw=(6, 6),
    )
    return model, x, torch.tensor([0.3, 0.8]), batch


@pytest.mark.parametrize("make_input", [multi_shot_input, _larger_input])
def test_flex_forward_equals_masked_sdpa(make_input, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x, t, batch = make_input()
    calls: list[int] = []
    real_attend = flex.attend
    with torch.no_grad():
        expected = model(x, t, batch)  # auto on CPU: masked SDPA
        model.attention = "flex"
        monkeypatch.setattr(flex, "attend", lambda *a: calls.append(1) or real_attend(*a))
        got = model(x, t, batch)
    assert len(calls) == model.config.num_layers  # every block's self-attention
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_flex_falls_back_to_sdpa_for_a_cpu_backward(caplog: pytest.LogCaptureFixture) -> None:
    model, x, t, batch = multi_shot_input()
    expected = model(x, t, batch)
    model.attention = "flex"
    flex._warned.clear()
    with caplog.at_level(logging.WARNING, logger="muss_builder.train.flex"):
        model(x, t, batch)
        got = model(x, t, batch)
    assert [r.message.count("no backward on cpu") for r in caplog.records] == [1]  # once
    torch.testing.assert_close(got, expected)


def test_flex_gradients_equal_masked_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch 2.13 refuses flex's backward on CPU in its input checks; the eager reference
    # implementation (the math that runs when flex is not compiled) has one, so lift the
    # check here to compare gradients, with activation checkpointing carrying the BlockMask
    monkeypatch.setattr(torch_flex, "_validate_device", lambda *args: None)
    monkeypatch.setattr(flex, "NO_BACKWARD_DEVICES", ())
    model, x, t, batch = _larger_input()
    batch.ref_latents.requires_grad_(True)
    model(x, t, batch).square().mean().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    expected_ref = batch.ref_latents.grad.clone()

    model.zero_grad()
    batch.ref_latents.grad = None
    model.attention, model.gradient_checkpointing = "flex", True
    model(x, t, batch).square().mean().backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(batch.ref_latents.grad, expected_ref, rtol=1e-4, atol=1e-8)


def test_plain_batches_stay_unmasked_sdpa_under_flex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flex, "attend", lambda *a: pytest.fail("flex without a mask"))
    model, x, t, _ = multi_shot_input()
    model.attention = "flex"
    with torch.no_grad():
        model(x, t, plain_input(2, 5, 8)[2])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("compiled_blocks", [True, False])
def test_cuda_compiled_bf16_flex_matches_masked_sdpa(compiled_blocks: bool) -> None:
    """Compiled blocks: flex inside each block's graph, under activation checkpointing; eager
    blocks: the module-level torch.compile(flex_attention). bf16 autocast, forward+backward."""
    model, x, t, batch = _larger_input()
    x, t, batch = x.cuda(), t.cuda(), batch.to("cuda")
    video_shots = batch.shot_index.repeat_interleave(8 * 15, dim=1)  # (B, 600)
    runs = {}
    for attention in ("auto", "efficient"):  # auto = flex on CUDA; efficient = masked SDPA
        net = copy.deepcopy(model).cuda()
        net.attention, net.validate_inputs = attention, False
        net.gradient_checkpointing = attention == "auto"
        mask = net.shared_self_mask(video_shots, batch.ref_shots, 9, torch.bfloat16)
        assert isinstance(mask, BlockMask) == (attention == "auto")
        if compiled_blocks:
            for block in net.blocks:
                block.compile()
        ref_latents = batch.ref_latents.clone().requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net(x, t, dataclasses.replace(batch, ref_latents=ref_latents))
        out.float().square().mean().backward()
        grads = {n: p.grad.float() for n, p in net.named_parameters()}
        grads["ref_latents"] = ref_latents.grad.float()
        runs[attention] = (out.float(), grads)
    (out, grads), (expected_out, expected_grads) = runs["auto"], runs["efficient"]
    torch.testing.assert_close(out, expected_out, rtol=0.05, atol=0.02)
    for name, grad in grads.items():  # bf16 rounding: compare relative norms
        expected = expected_grads[name]
        assert (grad - expected).norm() <= 0.05 * expected.norm() + 1e-6, name
