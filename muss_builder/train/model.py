"""MultiShotDiT: Wan2.1's video DiT with MultiShotMaster's three parameter-free additions.

The network is Wan2.1-T2V (diffusers ``WanTransformer3DModel``), written out in one file with
the SAME parameter names, so a diffusers checkpoint loads with strict key matching:

    x_t (B, C, T, H, W) --patch_embedding (Conv3d, stride = patch)--> (B, N_v, D) video tokens
    ref latents (B, R, C, 1, h, w) --same patch_embedding--> (B, R*J*K, D) reference tokens
    t (B,) * 1000 --sinusoid--> time_embedder --> temb (B, D) --time_proj--> (B, 6, D) modulation
    text (B, L, text_dim) --text_embedder--> (B, L, D)
    blocks x num_layers: x += gate * SelfAttn(mod(norm1(x)))      RMS qk-norm, 3D RoPE, mask
                         x += CrossAttn(norm2(x), text)            per-shot text mask
                         x += gate * FFN(mod(norm3(x)))            tanh-GELU
    video tokens --norm_out, (shift, scale) from temb--> proj_out --unpatchify--> (B, C, T, H, W)

What MultiShotMaster adds (no new parameters): the narrative RoPE and the reference RoPE
(``rope.py``), the shot-restricted self- and cross-attention masks (``masks.py``), and the
clean reference tokens that ride along in self-attention; their outputs are dropped.
Reference tokens share the video's timestep modulation (one temb per sample, as Wan2.1).
Its layers are in ``blocks.py``; loading and saving diffusers folders lives in ``weights.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn.attention.flex_attention import BlockMask
from torch.utils.checkpoint import checkpoint

from muss_builder.train import flex
from muss_builder.train.blocks import Block, ConditionEmbedder, FP32LayerNorm
from muss_builder.train.masks import cross_attention_mask, self_attention_mask
from muss_builder.train.presets import ModelConfig, RopeConfig
from muss_builder.train.rope import (
    TokenPositions,
    reference_positions,
    rotary_cos_sin,
    video_positions,
)
from muss_builder.train.types import LatentBatch
from muss_builder.train.weights import load_diffusers_folder, save_diffusers_folder

TIMESTEP_SCALE = 1000.0  # Wan was trained on timesteps 0..1000 = flow time * 1000


class MultiShotDiT(nn.Module):
    """Velocity model v(x_t, t | shots, captions, references) on Wan latents."""

    def __init__(self, config: ModelConfig, rope: RopeConfig | None = None) -> None:
        super().__init__()
        self.config = config
        self.rope_config = rope or RopeConfig()
        self.patch_embedding = nn.Conv3d(
            config.in_channels, config.dim, config.patch_size, stride=config.patch_size
        )
        self.condition_embedder = ConditionEmbedder(config)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.num_layers)])
        self.norm_out = FP32LayerNorm(config.dim, config.eps, elementwise_affine=False)
        patch_cells = math.prod(config.patch_size)
        self.proj_out = nn.Linear(config.dim, config.out_channels * patch_cells)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, config.dim) / config.dim**0.5)
        self.gradient_checkpointing = False
        self.validate_inputs = True  # shape/value checks (a few host syncs); off under compile
        # TrainConfig.attention: "flex" or "auto" (flex on CUDA) runs the reference-masked
        # self-attention on FlexAttention (flex.use_flex); the SDPA backends are chosen by the
        # trainer's sdpa_kernel context, which this model does not see
        self.attention = "auto"
        self.init_weights()

    def init_weights(self) -> None:
        """Wan2.1's own initialisation (diffusers keeps torch defaults): xavier linears and
        patch embedding, N(0, 0.02) text/time embedders, zero output projection weight so a
        fresh model predicts zero velocity. Checkpoint loading overwrites all of it."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        embedders = (self.condition_embedder.text_embedder, self.condition_embedder.time_embedder)
        for embedder in embedders:
            for module in embedder.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(self.proj_out.weight)

    # ---------------------------------------------------------------- forward

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        """Velocity of the video latents x_t (B, C, T, H, W) at flow time t (B,) in [0, 1]."""
        if self.validate_inputs:
            self.check_inputs(x_t, t, batch)
        cfg, rope = self.config, self.rope_config
        pt, ph, pw = cfg.patch_size
        bsz = x_t.shape[0]
        grid = self.token_grid(x_t)  # (T_tok, H_tok, W_tok)

        # inputs follow the weights' dtype: FSDP's mixed precision casts the weights and x_t,
        # not the LatentBatch fields
        weight_dtype = self.patch_embedding.weight.dtype
        video = self.patch_embedding(x_t.to(weight_dtype))  # (B, D, T_tok, H_tok, W_tok)
        video = video.flatten(2).transpose(1, 2).contiguous()  # (B, N_v, D)
        n_video = video.shape[1]
        shots_per_frame = batch.shot_index[:, ::pt]  # (B, T_tok)
        video_shots = shots_per_frame.repeat_interleave(grid[1] * grid[2], dim=1)  # (B, N_v)
        positions = video_positions(batch.shot_index, grid, pt, rope)

        compute_dtype = (
            torch.get_autocast_dtype(x_t.device.type)
            if torch.is_autocast_enabled(x_t.device.type)
            else weight_dtype
        )
        tokens, query_shots = video, video_shots
        self_mask: torch.Tensor | BlockMask | None = None  # shared by all blocks
        refs = self._real_references(batch)
        if refs is not None:
            ref_latents, ref_shots, ref_boxes, ref_frames = refs  # R' refs that are real somewhere
            n_refs = ref_latents.shape[1]
            ref_latents = ref_latents.flatten(0, 1).to(weight_dtype)  # (B*R', C, 1, h, w)
            ref_tokens = self.patch_embedding(ref_latents)  # (B*R', D, 1, J, K)
            ref_grid = (ref_tokens.shape[3], ref_tokens.shape[4])
            ref_tokens = ref_tokens.flatten(2).transpose(1, 2)  # (B*R', J*K, D)
            ref_tokens = ref_tokens.reshape(bsz, n_refs * ref_grid[0] * ref_grid[1], -1)
            tokens = torch.cat([video, ref_tokens], dim=1)  # (B, N_v + R'*J*K, D)
            per_ref = ref_grid[0] * ref_grid[1]
            query_shots = torch.cat([video_shots, ref_shots.repeat_interleave(per_ref, 1)], 1)
            positions = TokenPositions.cat(
                [
                    positions,
                    reference_positions(
                        ref_boxes, ref_frames, batch.shot_index, grid, ref_grid, pt, rope
                    ),
                ]
            )
            self_mask = self.shared_self_mask(video_shots, ref_shots, per_ref, compute_dtype)
        text_mask, has_text = cross_attention_mask(query_shots, batch.text_segments)
        text_mask = additive_mask(text_mask, compute_dtype)
        cos, sin = rotary_cos_sin(positions, cfg.head_dim, rope.theta)  # (B, N, 1, Dh/2)

        timestep = t.float() * TIMESTEP_SCALE  # float32 (a bf16 t is already ~3 digits)
        temb, modulation, text = self.condition_embedder(timestep, batch.text_embeds)
        for block in self.blocks:
            args = (tokens, text, modulation, cos, sin, self_mask, text_mask, has_text)
            if self.gradient_checkpointing and torch.is_grad_enabled():
                tokens = checkpoint(block, *args, use_reentrant=False)
            else:
                tokens = block(*args)

        video = tokens[:, :n_video]  # reference outputs are dropped
        shift, scale = (self.scale_shift_table + temb[:, None]).chunk(2, dim=1)  # (B, 1, D)
        video = (self.norm_out(video.float()) * (1 + scale) + shift).type_as(video)
        out = self.proj_out(video)  # (B, N_v, C_out * pt * ph * pw)
        out = out.reshape(bsz, *grid, pt, ph, pw, -1)  # (B, T_tok, H_tok, W_tok, pt, ph, pw, C)
        out = out.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, T_tok, pt, H_tok, ph, W_tok, pw)
        # a fresh tensor, never a view: with size-1 patch dims flatten returns a contiguous
        # view (which .contiguous() would hand back as is), and FSDP2 warns that an in-place
        # op on a view output skips its pre-backward hook; the copy is latent-sized
        out = out.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, T, H, W)
        return out.clone(memory_format=torch.contiguous_format)

    def shared_self_mask(
        self,
        video_shots: torch.Tensor,  # (B, N_v)
        ref_shots: torch.Tensor,  # (B, R'), -1 = padding
        per_ref: int,
        dtype: torch.dtype,
    ) -> torch.Tensor | BlockMask | None:
        """The self-attention mask of a batch with references, built once per forward: a
        BlockMask on the flex path, else SDPA's (B, 1, N, N) additive bias; None when
        everything may attend (unmasked SDPA, flash-eligible)."""
        device = video_shots.device
        if flex.use_flex(self.attention, device, masked=True):
            grad = torch.is_grad_enabled()
            reason = flex.flex_unsupported(self.config.head_dim, device, grad)
            if reason is None:
                return flex.self_attention_block_mask(video_shots, ref_shots, per_ref)
            flex.warn_fallback_once(reason)
        return additive_mask(self_attention_mask(video_shots, ref_shots, per_ref), dtype)

    @staticmethod
    def _real_references(
        batch: LatentBatch,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Reference slots that hold a real reference in at least one sample (others cost
        compute and change nothing: a padded reference is attended by nothing)."""
        if batch.ref_shots.shape[1] == 0:
            return None
        keep = (batch.ref_shots >= 0).any(dim=0).nonzero().flatten()  # (R',)
        if keep.numel() == 0:
            return None
        return (
            batch.ref_latents[:, keep],
            batch.ref_shots[:, keep],
            batch.ref_boxes[:, keep],
            batch.ref_latent_frames[:, keep],
        )

    def check_inputs(self, x_t: torch.Tensor, t: torch.Tensor, batch: LatentBatch) -> None:
        """Raise a ValueError naming the first field whose shape or values do not fit."""
        cfg = self.config
        if x_t.ndim != 5 or x_t.shape[1] != cfg.in_channels:
            raise ValueError(f"x_t must be (B, {cfg.in_channels}, T, H, W), got {tuple(x_t.shape)}")
        bsz, _, frames, height, width = x_t.shape
        if any(n % p for n, p in zip((frames, height, width), cfg.patch_size, strict=True)):
            raise ValueError(f"latent (T, H, W)={x_t.shape[2:]} not divisible by {cfg.patch_size}")
        if t.shape != (bsz,):
            raise ValueError(f"t must be ({bsz},) flow times, got {tuple(t.shape)}")
        text_len = batch.text_segments.shape[-1]
        n_refs = batch.ref_shots.shape[-1]
        expected = {
            "shot_index": (bsz, frames),
            "text_embeds": (bsz, text_len, cfg.text_dim),
            "text_segments": (bsz, text_len),
            "ref_shots": (bsz, n_refs),
            "ref_boxes": (bsz, n_refs, 4),
            "ref_latent_frames": (bsz, n_refs),
        }
        for name, shape in expected.items():
            if tuple(getattr(batch, name).shape) != shape:
                got = tuple(getattr(batch, name).shape)
                raise ValueError(f"batch.{name} has shape {got}, expected {shape}")
        refs = batch.ref_latents
        if refs.ndim != 6 or refs.shape[:4] != (bsz, n_refs, cfg.in_channels, 1):
            raise ValueError(f"batch.ref_latents must be (B, R, C, 1, h, w): {tuple(refs.shape)}")
        real = batch.ref_shots >= 0  # (B, R)
        if not bool(real.any()):
            return
        if refs.shape[4] % cfg.patch_size[1] or refs.shape[5] % cfg.patch_size[2]:
            raise ValueError(f"reference latents {refs.shape[4:]} not divisible by the patch")
        if cfg.patch_size[0] != 1:
            raise ValueError("reference images need a temporal patch size of 1")
        frame_ok = (batch.ref_latent_frames >= 0) & (batch.ref_latent_frames < frames)
        if not bool(frame_ok[real].all()):
            raise ValueError(f"batch.ref_latent_frames outside [0, {frames}) for a reference")
        frame_shot = torch.gather(batch.shot_index, 1, batch.ref_latent_frames.clamp(0, frames - 1))
        if not bool((frame_shot == batch.ref_shots)[real].all()):
            raise ValueError("a reference's target latent frame is not in the shot it serves")
        x1, y1, x2, y2 = batch.ref_boxes.unbind(-1)
        box_ok = (x1 >= 0) & (y1 >= 0) & (x2 <= 1) & (y2 <= 1) & (x2 > x1) & (y2 > y1)
        if not bool(box_ok[real].all()):
            raise ValueError("batch.ref_boxes must be normalised (x1, y1, x2, y2), x1<x2, y1<y2")

    # ---------------------------------------------------------------- cost

    def token_grid(self, latents: torch.Tensor) -> tuple[int, int, int]:
        """(T_tok, H_tok, W_tok): the video token grid of latents (B, C, T, H, W)."""
        pt, ph, pw = self.config.patch_size
        frames, height, width = latents.shape[2:]
        return frames // pt, height // ph, width // pw

    def flops_for_batch(self, batch: LatentBatch) -> int:
        """Forward matmul FLOPs of this model on ``batch`` (see ``forward_flops``)."""
        _, ph, pw = self.config.patch_size
        bsz = batch.latents.shape[0]
        n_video = math.prod(self.token_grid(batch.latents))
        refs = self._real_references(batch)
        n_ref = (
            0
            if refs is None
            else refs[0].shape[1] * (refs[0].shape[4] // ph) * (refs[0].shape[5] // pw)
        )
        return forward_flops(self.config, n_video, batch.text_segments.shape[1], n_ref, bsz)

    # ---------------------------------------------------------------- diffusers-format I/O

    def save_pretrained(self, path: str | Path, max_shard_bytes: int | None = None) -> None:
        """Write ``config.json`` + safetensors exactly as diffusers lays out a transformer."""
        save_diffusers_folder(self, path, max_shard_bytes)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        rope: RopeConfig | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> MultiShotDiT:
        """Load a diffusers ``WanTransformer3DModel`` folder (or a pipeline folder holding
        ``transformer/``) with strict key matching. ``rope`` defaults to the one saved by
        ``save_pretrained``, else ``RopeConfig()``."""
        return load_diffusers_folder(cls, path, rope, dtype, device)


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Bool mask (True = attend) -> 0 / -inf bias in the attention's dtype, built once.

    SDPA converts a bool mask to such a bias inside every call (and the memory-efficient
    kernel keeps it for the backward), i.e. once per layer; converting here shares one tensor
    across all layers. Its storage is padded to 16 keys so the kernel's stride alignment
    holds without another padded copy.
    """
    if mask is None:
        return None
    n_keys = mask.shape[-1]
    padded = -(-n_keys // 16) * 16
    bias = torch.full((*mask.shape[:-1], padded), float("-inf"), dtype=dtype, device=mask.device)
    return bias[..., :n_keys].masked_fill_(mask, 0.0)


def forward_flops(
    config: ModelConfig, video_tokens: int, text_tokens: int, ref_tokens: int = 0, batch: int = 1
) -> int:
    """Matmul FLOPs (2 per multiply-add) of one forward, as executed.

    Counts every Linear/Conv3d and both attention matmuls (QK^T and weights @ V) over the full
    token set: SDPA computes masked scores too, so masks do not reduce it. Elementwise work
    (norms, RoPE, modulation, softmax) is left out, as MFU conventions do. Training costs about
    3x this (backward = 2x forward), so MFU = 3 * forward_flops / step_seconds / peak_flops.
    """
    d, ffn, layers = config.dim, config.ffn_dim, config.num_layers
    n = video_tokens + ref_tokens
    cells = math.prod(config.patch_size)
    per_layer = (
        2 * n * d * d * 4  # self-attention q, k, v, out
        + 2 * 2 * n * n * d  # self-attention scores and weighted sum, all heads
        + 2 * n * d * d * 2  # cross-attention q, out
        + 2 * text_tokens * d * d * 2  # cross-attention k, v over the text
        + 2 * 2 * n * text_tokens * d  # cross-attention scores and weighted sum
        + 2 * n * d * ffn * 2  # feed-forward up and down
    )
    embeddings = (
        2 * n * config.in_channels * cells * d  # patch embedding (video and references)
        + 2 * text_tokens * (config.text_dim * d + d * d)  # text projection
        + 2 * (config.freq_dim * d + d * d + d * 6 * d)  # time embedding and modulation
        + 2 * video_tokens * d * config.out_channels * cells  # proj_out (video tokens only)
    )
    return batch * (layers * per_layer + embeddings)
