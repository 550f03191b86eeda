"""FlexAttention for the reference-masked self-attention (the same pattern as ``masks.py``).

With reference images, ``masks.self_attention_mask`` is a dense (B, 1, N, N) mask: SDPA then
cannot use its flash kernel and a kernel that takes the mask reads an N^2 bias in every layer
(at 39,256 tokens a step ran 1.78x slower than without references). The rule only needs two
small per-token indices, so FlexAttention evaluates it as a ``mask_mod`` and, through a
``BlockMask`` built once per forward, skips the mask entirely on the (nearly all) 128 x 128
tiles that are fully visible: the video-to-video part of the sequence.

``use_flex`` decides the path, ``flex_unsupported`` names what flex cannot serve (the model
then falls back to masked SDPA, with a one-time warning), ``self_attention_block_mask`` builds
the BlockMask and ``attend`` runs the attention.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

from muss_builder.train.masks import self_mask_allows_all

log = logging.getLogger(__name__)

# torch 2.13 raises "FlexAttention does not support backward on CPU" (and on MPS): training
# there keeps masked SDPA; inference (no grad) runs flex's eager reference implementation
NO_BACKWARD_DEVICES: tuple[str, ...] = ("cpu", "mps")
_warned: set[str] = set()
_compiled_flex: Callable[..., torch.Tensor] | None = None

MaskMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def use_flex(attention: str, device: torch.device, masked: bool) -> bool:
    """Whether the self-attention of a batch runs on FlexAttention.

    ``attention`` is ``TrainConfig.attention``; ``masked``: the batch has references, so its
    self-attention needs a mask. ``flex`` forces it; ``auto`` takes it on CUDA only (CPU has no
    fused flex kernel to gain from, and no flex backward); an SDPA backend never does. Batches
    without references keep unmasked SDPA (flash) whatever the choice.
    """
    if not masked:
        return False
    return attention == "flex" or (attention == "auto" and device.type == "cuda")


def flex_unsupported(head_dim: int, device: torch.device, needs_grad: bool) -> str | None:
    """Why flex cannot serve this attention (None: it can)."""
    if needs_grad and device.type in NO_BACKWARD_DEVICES:
        return f"FlexAttention has no backward on {device.type}"
    # the Triton kernel needs head dims >= 16 (tl.dot); newer torch pads other widths to a
    # power of two, but powers of two are what is measured here (Wan: 128, tiny: 32)
    if device.type == "cuda" and (head_dim < 16 or head_dim & (head_dim - 1)):
        return f"head dim {head_dim} is not a power of two >= 16"
    return None


def warn_fallback_once(reason: str) -> None:
    """One log warning per distinct reason, not one per forward."""
    if reason not in _warned:
        _warned.add(reason)
        log.warning("attention: flex cannot serve this model (%s); using masked SDPA", reason)


def token_indices(
    video_shots: torch.Tensor, ref_shots: torch.Tensor, tokens_per_ref: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token indices of ``[video tokens; reference tokens]`` (references reference-major).

    -> token_shot (B, N): the shot of each video token / of each reference token's reference
    (-1 for padding references); token_ref (N,): each token's reference slot, -1 for video
    tokens (the slot layout is the same in every sample).
    """
    n_video, n_refs = video_shots.shape[1], ref_shots.shape[1]
    token_shot = torch.cat([video_shots, ref_shots.repeat_interleave(tokens_per_ref, dim=1)], 1)
    video_ref = torch.full((n_video,), -1, dtype=torch.long, device=ref_shots.device)
    slots = torch.arange(n_refs, device=ref_shots.device).repeat_interleave(tokens_per_ref)
    return token_shot, torch.cat([video_ref, slots])


def self_attention_mask_mod(token_shot: torch.Tensor, token_ref: torch.Tensor) -> MaskMod:
    """``masks.self_attention_mask`` as a mask_mod (True = may attend), cell for cell."""

    def mask_mod(
        b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor
    ) -> torch.Tensor:
        q_shot, kv_shot = token_shot[b, q_idx], token_shot[b, kv_idx]
        q_ref, kv_ref = token_ref[q_idx], token_ref[kv_idx]
        # both video tokens (-1 == -1: the narrative is one sequence) or one reference's tokens
        same_ref = q_ref == kv_ref
        # video <-> reference: same shot (a padding reference's -1 matches no video shot);
        # reference <-> reference: same shot and a real one (padding sees only itself)
        both_refs = (q_ref >= 0) & (kv_ref >= 0)
        same_shot = (q_shot == kv_shot) & ((q_shot >= 0) | ~both_refs)
        return same_ref | same_shot

    return mask_mod


def self_attention_block_mask(
    video_shots: torch.Tensor, ref_shots: torch.Tensor, tokens_per_ref: int
) -> BlockMask | None:
    """BlockMask of ``masks.self_attention_mask`` for N = N_v + R * tokens_per_ref tokens,
    or None when everything may attend (as that function returns None: flash SDPA serves).

    Built once per forward and shared by all blocks. Eager ``create_block_mask`` evaluates the
    mask_mod over (B, N, N) once, as the dense mask did; the kernels then read only per-tile
    indices. N need not be a multiple of the 128-token tile: the last tiles are partial.
    """
    if ref_shots.shape[1] == 0 or tokens_per_ref == 0:
        return None
    if self_mask_allows_all(video_shots, ref_shots):
        return None
    token_shot, token_ref = token_indices(video_shots, ref_shots, tokens_per_ref)
    batch, n_tokens = token_shot.shape
    mask_mod = self_attention_mask_mod(token_shot, token_ref)
    # H=None: one mask for all heads
    return create_block_mask(mask_mod, batch, None, n_tokens, n_tokens, device=token_shot.device)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: BlockMask) -> torch.Tensor:
    """Flex self-attention of q, k, v (B, heads, N, Dh) -> (B, heads, N, Dh).

    Inside a compiled block (``block.compile()``) Dynamo captures ``flex_attention`` itself and
    Inductor lowers it to the fused kernel. In an eager block on CUDA, plain ``flex_attention``
    would run its reference implementation, which materialises (B, heads, N, N) scores (74 GB
    in fp32 at the Wan shape): there it goes through one ``torch.compile(flex_attention)``,
    made on first use. That wrapper is not used under compilation, so nothing relies on how
    Dynamo treats a compiled function nested in a compiled region. Its shapes are dynamic
    after a second distinct one (torch.compile's default), so varying token counts cannot use
    up the recompile limit and silently drop to the eager path. Off CUDA the eager reference
    implementation serves (CPU tests).
    """
    if torch.compiler.is_compiling() or q.device.type != "cuda":
        return flex_attention(q, k, v, block_mask=mask)
    global _compiled_flex
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex(q, k, v, block_mask=mask)
