"""Rectified flow: the training loss, the timestep sampler and the Euler sampler with CFG.

Convention (shared with the model): ``x_t = (1 - t) * x0 + t * noise`` for ``t`` in ``[0, 1]``,
so ``t = 1`` is pure noise; the network predicts the velocity ``v = noise - x0`` and sampling
integrates ``dx/dt = v`` from ``t = 1`` down to ``t = 0``.

Classifier-free guidance. Caption dropout replaces a sample's text embeddings by zeros while
keeping its ``text_segments`` (so the per-shot cross-attention mask has the same structure)
and keeping its references: the null condition is "no words, same shots, same references".
The guided velocity is ``v_null + scale * (v_cond - v_null)``, so guidance pushes along what
the captions add and never strips the identity the references give.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from muss_builder.train.types import LatentBatch

# (x_t, t, batch) -> velocity; the DiT's forward has this signature
VelocityModel = Callable[[torch.Tensor, torch.Tensor, LatentBatch], torch.Tensor]


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3/Wan timestep shift ``s t / (1 + (s - 1) t)``: ``s > 1`` spends more time near noise.

    Large latents keep their coarse structure under more noise than small ones, so Wan samples
    with ``shift`` 5 at 480p; ``shift = 1`` is the identity.
    """
    if shift <= 0:
        raise ValueError(f"timestep shift must be > 0, got {shift}")
    if shift == 1.0:
        return t
    return shift * t / (1.0 + (shift - 1.0) * t)


def sample_timesteps(
    n: int,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Logit-normal timesteps (SD3): ``sigmoid(mean + std * z)``, then the optional shift.

    Drawn on the CPU from ``generator`` so a resumed run draws the same numbers whatever the
    device; returned as float32 on ``device``.
    """
    if std <= 0:
        raise ValueError(f"logit-normal std must be > 0, got {std}")
    z = torch.randn(n, generator=generator, dtype=torch.float32)
    t = torch.sigmoid(mean + std * z)
    return shift_timesteps(t, shift).to(device)


def noisy_latents(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 - t) x0 + t noise`` with ``t`` of shape (B,) broadcast over (C, T, H, W)."""
    tt = t.to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return (1.0 - tt) * x0 + tt * noise


def flow_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted MSE of the velocity over video latents, averaged per sample then over the batch.

    ``pred``/``target``: (B, C, T, H, W); ``weight``: (B, T, H, W) (``LatentBatch.loss_weight``,
    1 outside subject boxes). Each sample is normalised by its own weight sum so a sample with
    big subject boxes does not count more than one without: the boxes re-weight positions
    *within* a sample, as in MultiShotMaster. Computed in float32.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} vs target {tuple(target.shape)}")
    err = (pred.float() - target.float()).pow(2).mean(dim=1)  # (B, T, H, W)
    if weight is None:
        return err.mean()
    if weight.shape != err.shape:
        raise ValueError(f"loss weight {tuple(weight.shape)} vs latents {tuple(err.shape)}")
    w = weight.float()
    per_sample = (err * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-8)
    return per_sample.mean()


def box_loss_weight(batch: LatentBatch, box_weight: float) -> torch.Tensor:
    """The loss weight to use: the batch's (1 outside boxes, >1 inside) rescaled to ``box_weight``.

    The data side marks subject-box positions with any value > 1; ``box_weight`` decides how
    much they count (1 turns the boxes off, 2 is MultiShotMaster's).
    """
    inside = batch.loss_weight > 1.0
    weight = torch.ones_like(batch.loss_weight, dtype=torch.float32)
    return weight.masked_fill(inside, float(box_weight))


def null_condition(batch: LatentBatch) -> LatentBatch:
    """The unconditional batch for CFG: zero text embeddings, same segments and references."""
    return replace(batch, text_embeds=torch.zeros_like(batch.text_embeds))


def drop_captions(
    batch: LatentBatch, prob: float, generator: torch.Generator | None = None
) -> tuple[LatentBatch, torch.Tensor]:
    """Caption dropout: each sample's text becomes the null condition with probability ``prob``.

    The draw is on the CPU from ``generator`` (reproducible on resume); returns the new batch
    and the (B,) bool mask of dropped samples.
    """
    b = batch.text_embeds.shape[0]
    dropped = torch.rand(b, generator=generator) < prob
    if not bool(dropped.any()):
        return batch, dropped
    keep = (~dropped).to(batch.text_embeds.device, batch.text_embeds.dtype).view(b, 1, 1)
    return replace(batch, text_embeds=batch.text_embeds * keep), dropped


def sampling_schedule(steps: int, shift: float = 1.0) -> torch.Tensor:
    """``steps + 1`` timesteps from 1 to 0 (uniform, then shifted)."""
    if steps < 1:
        raise ValueError(f"sampling needs at least 1 step, got {steps}")
    return shift_timesteps(torch.linspace(1.0, 0.0, steps + 1), shift)


@torch.no_grad()
def euler_sample(
    model: VelocityModel,
    noise: torch.Tensor,
    batch: LatentBatch,
    steps: int,
    cfg_scale: float = 1.0,
    null_batch: LatentBatch | None = None,
    *,
    shift: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Integrate the flow ODE from ``noise`` (t = 1) to a clean latent (t = 0) with Euler steps.

    With ``cfg_scale != 1`` each step evaluates the model twice (conditional, then
    ``null_batch``, by default :func:`null_condition` of ``batch``) and extrapolates. Returns
    float32 latents of ``noise``'s shape.
    """
    if cfg_scale != 1.0 and null_batch is None:
        null_batch = null_condition(batch)
    x = noise.float()
    ts = sampling_schedule(steps, shift).tolist()
    for i in range(steps):
        t_now, t_next = ts[i], ts[i + 1]
        t = torch.full((x.shape[0],), t_now, device=x.device, dtype=torch.float32)
        v = model(x, t, batch).float()
        if cfg_scale != 1.0:
            assert null_batch is not None
            v_null = model(x, t, null_batch).float()
            v = v_null + cfg_scale * (v - v_null)
        x = x + (t_next - t_now) * v
        if progress is not None:
            progress(i + 1, steps)
    return x


def logit_normal_density(t: float, mean: float = 0.0, std: float = 1.0) -> float:
    """Density of the logit-normal at ``t`` (for docs and tests of the sampler)."""
    if not 0.0 < t < 1.0:
        return 0.0
    logit = math.log(t / (1.0 - t))
    z = (logit - mean) / std
    return math.exp(-0.5 * z * z) / (std * math.sqrt(2 * math.pi) * t * (1.0 - t))
