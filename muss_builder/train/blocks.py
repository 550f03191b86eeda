"""Wan2.1's layers, with diffusers' parameter names (the model is ``model.MultiShotDiT``).

Shapes: B batch, N tokens (video then reference tokens), D model width, L text tokens,
H heads, Dh = D / H head width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import BlockMask

from muss_builder.train import flex
from muss_builder.train.presets import QK_NORM_RMS, ModelConfig
from muss_builder.train.rope import apply_rotary


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the activations' dtype (as diffusers/Wan)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class RMSNorm(nn.RMSNorm):
    """RMSNorm whose weight follows the input's dtype, so autocast's bf16 activations keep
    the fused kernel (a float32 weight on bf16 input falls back to the unfused path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(x.dtype) if self.weight is not None else None
        return F.rms_norm(x, self.normalized_shape, weight, self.eps)


class TimestepEmbedding(nn.Module):
    def __init__(self, freq_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(freq_dim, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class TextProjection(nn.Module):
    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(text_dim, dim)
        self.act_1 = nn.GELU(approximate="tanh")
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act_1(self.linear_1(x)))


def timestep_sinusoid(timestep: torch.Tensor, freq_dim: int) -> torch.Tensor:
    """(B,) -> (B, freq_dim) [cos | sin] features (diffusers Timesteps, flip_sin_to_cos)."""
    half = freq_dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=timestep.device)
    angles = timestep[:, None].float() * torch.exp(exponent / half)[None, :]  # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class ConditionEmbedder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.freq_dim = config.freq_dim
        self.time_embedder = TimestepEmbedding(config.freq_dim, config.dim)
        self.act_fn = nn.SiLU()
        self.time_proj = nn.Linear(config.dim, 6 * config.dim)
        self.text_embedder = TextProjection(config.text_dim, config.dim)

    def forward(
        self, timestep: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> temb (B, D), block modulation (B, 6, D), projected text (B, L, D)."""
        sinusoid = timestep_sinusoid(timestep, self.freq_dim)
        sinusoid = sinusoid.to(self.time_embedder.linear_1.weight.dtype)
        text = text.to(self.text_embedder.linear_1.weight.dtype)
        temb = self.time_embedder(sinusoid).type_as(text)  # (B, D)
        modulation = self.time_proj(self.act_fn(temb)).unflatten(1, (6, -1))  # (B, 6, D)
        return temb, modulation, self.text_embedder(text)


class Attention(nn.Module):
    """Multi-head attention with RMS qk-norm across heads (self- or cross-attention)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim = config.dim
        self.heads = config.num_heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])  # diffusers: [Linear, Dropout]
        rms = config.qk_norm == QK_NORM_RMS
        self.norm_q = RMSNorm(dim, eps=config.eps) if rms else nn.Identity()
        self.norm_k = RMSNorm(dim, eps=config.eps) if rms else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,  # (B, N, D) queries
        context: torch.Tensor | None = None,  # (B, L, D) keys/values; None = self-attention
        # (B, 1, N, L) additive bias (0 = attend, -inf = not) for SDPA, or a BlockMask over
        # (B, 1, N, N) for FlexAttention (self-attention with references only)
        mask: torch.Tensor | BlockMask | None = None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,  # cos, sin (B, N, 1, Dh/2)
    ) -> torch.Tensor:
        context = x if context is None else context
        q = self.norm_q(self.to_q(x)).unflatten(2, (self.heads, -1))  # (B, N, heads, Dh)
        k = self.norm_k(self.to_k(context)).unflatten(2, (self.heads, -1))  # (B, L, heads, Dh)
        v = self.to_v(context).unflatten(2, (self.heads, -1))
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, *, Dh)
        if isinstance(mask, BlockMask):
            out = flex.attend(q, k, v, mask)  # (B, heads, N, Dh)
        else:
            if mask is not None and mask.dtype != q.dtype:
                mask = mask.to(q.dtype)  # only if the forward guessed the compute dtype wrong
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N, Dh)
        out = out.transpose(1, 2).flatten(2).type_as(q)  # (B, N, D)
        return self.to_out[0](out)


class TanhGELUProjection(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        # the Dropout keeps diffusers' indices: net.0.proj, net.2
        self.net = nn.ModuleList(
            [TanhGELUProjection(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim = config.dim
        self.norm1 = FP32LayerNorm(dim, config.eps, elementwise_affine=False)
        self.attn1 = Attention(config)
        self.attn2 = Attention(config)
        self.norm2 = (
            FP32LayerNorm(dim, config.eps, elementwise_affine=True)
            if config.cross_attn_norm
            else nn.Identity()
        )
        self.ffn = FeedForward(dim, config.ffn_dim)
        self.norm3 = FP32LayerNorm(dim, config.eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,  # (B, N, D) video + reference tokens
        text: torch.Tensor,  # (B, L, D)
        modulation: torch.Tensor,  # (B, 6, D)
        cos: torch.Tensor,  # (B, N, 1, Dh/2)
        sin: torch.Tensor,
        self_mask: torch.Tensor | BlockMask | None,  # (B, 1, N, N) bias, or a flex BlockMask
        text_mask: torch.Tensor | None,  # (B, 1, N, L)
        has_text: torch.Tensor | None,  # (B, N) False: the token has no text to attend
    ) -> torch.Tensor:
        shift, scale, gate, ffn_shift, ffn_scale, ffn_gate = (
            self.scale_shift_table + modulation.float()
        ).chunk(6, dim=1)  # (B, 1, D) each, float32
        h = (self.norm1(x.float()) * (1 + scale) + shift).type_as(x)
        x = (x.float() + self.attn1(h, None, self_mask, (cos, sin)) * gate).type_as(x)
        cross = self.attn2(self.norm2(x.float()).type_as(x), text, text_mask)
        if has_text is not None:
            cross = cross * has_text[..., None].to(cross.dtype)
        x = x + cross
        h = (self.norm3(x.float()) * (1 + ffn_scale) + ffn_shift).type_as(x)
        return (x.float() + self.ffn(h).float() * ffn_gate).type_as(x)
