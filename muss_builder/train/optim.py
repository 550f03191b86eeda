"""The optimiser side of training: AdamW with its parameter groups, the learning-rate
schedule, the EMA of the weights, gradient clipping (FSDP2-aware)."""

from __future__ import annotations

import math

import torch
from torch import nn

from muss_builder.train.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and the modulation tables (they are offsets)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "scale_shift_table" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    o = cfg.optim
    return torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps, fused=fused or None)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to 1 over ``warmup_steps``, then cosine to ``min_lr_ratio`` (or flat)."""
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if not o.cosine:
        return 1.0
    span = max(1, o.total_steps - o.warmup_steps)
    progress = min(1.0, (step - o.warmup_steps) / span)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class EMA:
    """fp32 exponential moving average of the parameters (sharded like them under FSDP2).

    The effective decay ramps as ``min(decay, (1 + step) / (10 + step))`` so early averages
    are not dominated by the random init.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.shadow = {
            n: p.detach().float().clone() for n, p in zip(names, self.params, strict=True)
        }

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema, param in zip(self.shadow.values(), self.params, strict=True):
            ema.lerp_(param.detach().float(), 1.0 - decay)


def clip_gradients(model: nn.Module, max_norm: float | None) -> torch.Tensor:
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm or float("inf"))
    from torch.distributed.tensor import DTensor

    return norm.full_tensor() if isinstance(norm, DTensor) else norm
