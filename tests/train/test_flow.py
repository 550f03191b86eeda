"""Rectified flow: interpolation, weighted loss, timestep sampler, caption dropout and the
Euler sampler with classifier-free guidance, each against values worked out by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from muss_builder.train import flow
from muss_builder.train.types import TEXT_PAD, LatentBatch


def make_batch(b: int = 2, t: int = 3, h: int = 4, w: int = 4, text: int = 5) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    return LatentBatch(
        keys=[f"k{i}" for i in range(b)],
        latents=torch.randn(b, 16, t, h, w, generator=g),
        shot_index=torch.zeros(b, t, dtype=torch.long),
        n_shots=torch.ones(b, dtype=torch.long),
        text_embeds=torch.randn(b, text, 8, generator=g) + 3.0,
        text_segments=torch.tensor([[0, 0, 1, 1, TEXT_PAD]] * b),
        ref_latents=torch.zeros(b, 0, 16, 1, 2, 2),
        ref_shots=torch.zeros(b, 0, dtype=torch.long),
        ref_boxes=torch.zeros(b, 0, 4),
        ref_latent_frames=torch.zeros(b, 0, dtype=torch.long),
        loss_weight=torch.ones(b, t, h, w),
    )


def test_noisy_latents_endpoints_and_velocity() -> None:
    x0, noise = torch.randn(2, 16, 2, 2, 2), torch.randn(2, 16, 2, 2, 2)
    assert torch.equal(flow.noisy_latents(x0, noise, torch.zeros(2)), x0)
    assert torch.equal(flow.noisy_latents(x0, noise, torch.ones(2)), noise)
    t = torch.tensor([0.25, 0.5])
    x_t = flow.noisy_latents(x0, noise, t)
    # moving along v = noise - x0 for (1 - t) reaches the noise: the path is a straight line
    x1 = x_t + (1 - t).view(-1, 1, 1, 1, 1) * (noise - x0)
    torch.testing.assert_close(x1, noise)


def test_flow_loss_box_weight_and_per_sample_normalisation() -> None:
    pred = torch.zeros(2, 16, 1, 1, 2)
    target = torch.zeros(2, 16, 1, 1, 2)
    target[0, :, 0, 0, 0] = 1.0  # sample 0: error 1 in cell 0, 0 in cell 1
    target[1, :, 0, 0, 1] = 3.0  # sample 1: error 9 in cell 1
    ones = torch.ones(2, 1, 1, 2)
    assert flow.flow_loss(pred, target, ones).item() == pytest.approx((0.5 + 4.5) / 2)
    weight = ones.clone()
    weight[0, 0, 0, 0] = 2.0  # a subject box over the erring cell of sample 0
    # sample 0: (2*1 + 1*0) / 3; sample 1 unchanged: 9 / 2
    assert flow.flow_loss(pred, target, weight).item() == pytest.approx((2 / 3 + 4.5) / 2)
    with pytest.raises(ValueError, match="loss weight"):
        flow.flow_loss(pred, target, torch.ones(2, 1, 2, 2))


def test_box_loss_weight_rescales_marked_cells() -> None:
    batch = make_batch(b=1, t=1, h=1, w=3)
    batch.loss_weight = torch.tensor([[[[1.0, 2.0, 1.0]]]])
    assert flow.box_loss_weight(batch, 1.0).tolist() == [[[[1.0, 1.0, 1.0]]]]
    assert flow.box_loss_weight(batch, 3.0).tolist() == [[[[1.0, 3.0, 1.0]]]]


def test_logit_normal_timesteps_and_shift() -> None:
    g = torch.Generator().manual_seed(1)
    t = flow.sample_timesteps(20000, mean=0.5, std=1.0, generator=g)
    assert t.min() > 0 and t.max() < 1
    # the median of a logit-normal is sigmoid(mean)
    assert t.median().item() == pytest.approx(1 / (1 + math.exp(-0.5)), abs=0.01)
    again = flow.sample_timesteps(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, flow.sample_timesteps(5, generator=torch.Generator().manual_seed(3)))
    grid = torch.linspace(0, 1, 11)
    shifted = flow.shift_timesteps(grid, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert bool((shifted[1:-1] > grid[1:-1]).all())  # shift > 1 moves time toward noise
    assert torch.equal(flow.shift_timesteps(grid, 1.0), grid)
    with pytest.raises(ValueError):
        flow.sample_timesteps(3, std=0.0)


def test_caption_dropout_keeps_segments_and_references() -> None:
    batch = make_batch()
    same, dropped = flow.drop_captions(batch, 0.0, torch.Generator().manual_seed(0))
    assert same is batch and not dropped.any()
    null, dropped = flow.drop_captions(batch, 1.0, torch.Generator().manual_seed(0))
    assert dropped.all() and torch.count_nonzero(null.text_embeds) == 0
    assert torch.equal(null.text_segments, batch.text_segments)
    assert null.ref_latents is batch.ref_latents
    half, dropped = flow.drop_captions(batch, 0.5, torch.Generator().manual_seed(5))
    for i in range(2):
        expected = torch.zeros_like(batch.text_embeds[i]) if dropped[i] else batch.text_embeds[i]
        assert torch.equal(half.text_embeds[i], expected)
    assert torch.count_nonzero(flow.null_condition(batch).text_embeds) == 0


def test_euler_reaches_the_target_on_straight_paths() -> None:
    """For a single data point x0 the exact velocity is (x - x0) / t: every Euler step is
    exact, so even 3 steps land on x0 (to float error)."""
    batch = make_batch(b=1)
    x0 = torch.randn(1, 16, 3, 4, 4)

    def exact(x: torch.Tensor, t: torch.Tensor, _batch: LatentBatch) -> torch.Tensor:
        return (x - x0) / t.view(-1, 1, 1, 1, 1)

    noise = torch.randn_like(x0)
    for shift in (1.0, 3.0):
        out = flow.euler_sample(exact, noise, batch, steps=3, shift=shift)
        torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)


def test_cfg_combines_conditional_and_null_velocities() -> None:
    batch = make_batch(b=1)

    def model(x: torch.Tensor, t: torch.Tensor, b: LatentBatch) -> torch.Tensor:
        has_text = bool(b.text_embeds.abs().sum() > 0)
        return torch.full_like(x, 2.0 if has_text else 0.5)

    noise = torch.zeros(1, 16, 3, 4, 4)
    # one step from t=1 to t=0: x = noise - v, with v = 0.5 + s * (2 - 0.5)
    out = flow.euler_sample(model, noise, batch, steps=1, cfg_scale=4.0)
    torch.testing.assert_close(out, torch.full_like(noise, -(0.5 + 4.0 * 1.5)))
    plain = flow.euler_sample(model, noise, batch, steps=1, cfg_scale=1.0)
    torch.testing.assert_close(plain, torch.full_like(noise, -2.0))
    explicit_null = replace(batch, text_embeds=torch.zeros_like(batch.text_embeds))
    again = flow.euler_sample(model, noise, batch, 1, 4.0, explicit_null)
    torch.testing.assert_close(again, out)
