"""3D rotary position embedding on float (t, h, w) token coordinates.

Wan's RoPE (diffusers ``WanRotaryPosEmbed``) splits each attention head into three bands:
``h_dim = w_dim = 2 * (head_dim // 6)`` channels rotate with the token's row and column and the
remaining ``t_dim = head_dim - h_dim - w_dim`` with its frame; within a band of width ``d`` the
pair ``(2i, 2i+1)`` rotates by ``pos * theta ** (-2i / d)``. Wan indexes a table by integer
positions; the multi-shot additions need fractional ones, so angles are computed per token here
(float64, like diffusers' table, so integer positions give the same cos/sin bits):

- narrative RoPE: every token of shot ``s`` sits at ``t = frame + s * phi`` ("position" mode), or
  keeps ``t = frame`` and gets ``s * phi`` radians added to every temporal angle ("angle" mode);
- reference tokens: a reference of ``J x K`` tokens serving a subject with normalised box
  ``(x1, y1, x2, y2)`` at latent frame ``f`` gets ``h_j = Y1 + (Y2 - Y1) / J * j`` and
  ``w_k = X1 + (X2 - X1) / K * k`` where ``Y = y * H_tok`` and ``X = x * W_tok`` are in the
  video's token grid, and the (shifted) temporal coordinate of frame ``f``.

Coordinates are token-grid units (a video token at row r has h = r), so a reference token and
the video token it overlaps share a position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from muss_builder.train.presets import RopeConfig


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Channels of a head that rotate with t, h and w (Wan's split)."""
    h_dim = w_dim = 2 * (head_dim // 6)
    return head_dim - h_dim - w_dim, h_dim, w_dim


def _angle_dtype(device: torch.device) -> torch.dtype:
    # float64 like diffusers (which also falls back to float32 where MPS lacks float64)
    return torch.float32 if device.type == "mps" else torch.float64


@dataclass
class TokenPositions:
    """Rotary coordinates of a token sequence."""

    coords: torch.Tensor  # (B, N, 3) float (t, h, w) in token-grid units
    t_angle_offset: torch.Tensor  # (B, N) float radians added to every temporal angle

    @staticmethod
    def cat(parts: list[TokenPositions]) -> TokenPositions:
        return TokenPositions(
            torch.cat([p.coords for p in parts], dim=1),
            torch.cat([p.t_angle_offset for p in parts], dim=1),
        )


def _shift(
    frame_tok: torch.Tensor, shot: torch.Tensor, rope: RopeConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(temporal coordinate, temporal angle offset) of tokens at ``frame_tok`` in ``shot``."""
    shift = shot.to(frame_tok.dtype) * rope.phi
    if rope.mode == "position":
        return frame_tok + shift, torch.zeros_like(frame_tok)
    return frame_tok, shift


def _grid_positions(
    t: torch.Tensor, t_offset: torch.Tensor, h: torch.Tensor, w: torch.Tensor
) -> TokenPositions:
    """Tokens of ``A`` grids of ``J x K``, flattened (A, J, K)-major: ``t``/``t_offset`` are
    (B, A) per grid, ``h`` broadcasts to (B, A, J, 1) and ``w`` to (B, A, 1, K)."""
    batch, n_grids = t.shape
    shape = (batch, n_grids, h.shape[-2], w.shape[-1])
    coords = torch.stack(
        [t[:, :, None, None].expand(shape), h.expand(shape), w.expand(shape)], dim=-1
    )  # (B, A, J, K, 3)
    offset = t_offset[:, :, None, None].expand(shape)
    return TokenPositions(coords.reshape(batch, -1, 3), offset.reshape(batch, -1))


def video_positions(
    shot_index: torch.Tensor,
    grid: tuple[int, int, int],
    patch_t: int,
    rope: RopeConfig,
) -> TokenPositions:
    """Coordinates of video tokens, flattened in (t, h, w) order like Wan's patch embedding.

    ``shot_index``: (B, T_lat) the shot of each latent frame; ``grid``: (T_tok, H_tok, W_tok).
    """
    t_tok, h_tok, w_tok = grid
    batch, t_lat = shot_index.shape
    if t_lat != t_tok * patch_t:
        raise ValueError(f"shot_index has {t_lat} latent frames, the latents {t_tok * patch_t}")
    dtype = _angle_dtype(shot_index.device)
    device = shot_index.device
    frame = torch.arange(t_tok, device=device, dtype=dtype)  # (T_tok,)
    shot = shot_index[:, ::patch_t]  # (B, T_tok): the shot of each token frame's first frame
    t, t_offset = _shift(frame.expand(batch, t_tok), shot, rope)  # (B, T_tok) each
    rows = torch.arange(h_tok, device=device, dtype=dtype)
    cols = torch.arange(w_tok, device=device, dtype=dtype)
    return _grid_positions(t, t_offset, rows[None, None, :, None], cols[None, None, None, :])


def reference_positions(
    ref_boxes: torch.Tensor,
    ref_latent_frames: torch.Tensor,
    shot_index: torch.Tensor,
    video_grid: tuple[int, int, int],
    ref_grid: tuple[int, int],
    patch_t: int,
    rope: RopeConfig,
) -> TokenPositions:
    """Coordinates of reference tokens sampled inside each subject's target box.

    ``ref_boxes``: (B, R, 4) normalised (x1, y1, x2, y2); ``ref_latent_frames``: (B, R) latent
    frame of the target frame (clamped into range, so padding values are harmless);
    ``ref_grid``: (J, K) tokens per reference. Returns (B, R * J * K) tokens, reference-major.
    """
    _, h_tok, w_tok = video_grid
    rows, cols = ref_grid
    device = ref_boxes.device
    dtype = _angle_dtype(device)
    frames = ref_latent_frames.clamp(0, shot_index.shape[1] - 1)  # (B, R)
    shot = torch.gather(shot_index, 1, frames)  # (B, R): the shot the target frame is in
    t, t_offset = _shift((frames // patch_t).to(dtype), shot, rope)  # (B, R) each
    x1, y1, x2, y2 = ref_boxes.to(dtype).unbind(-1)  # (B, R) each, normalised
    j = torch.arange(rows, device=device, dtype=dtype)
    k = torch.arange(cols, device=device, dtype=dtype)
    h = (y1 * h_tok)[..., None] + ((y2 - y1) * h_tok / rows)[..., None] * j  # (B, R, J)
    w = (x1 * w_tok)[..., None] + ((x2 - x1) * w_tok / cols)[..., None] * k  # (B, R, K)
    return _grid_positions(t, t_offset, h[:, :, :, None], w[:, :, None, :])


def rotary_cos_sin(
    positions: TokenPositions, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each rotation angle: (B, N, 1, head_dim // 2) float32, one per pair."""
    coords = positions.coords
    bands = []
    for axis, width in enumerate(axis_dims(head_dim)):
        exponent = torch.arange(0, width, 2, device=coords.device, dtype=coords.dtype) / width
        inv_freq = 1.0 / (theta**exponent)  # (width / 2,)
        bands.append(coords[..., axis, None] * inv_freq)  # (B, N, width / 2)
    bands[0] = bands[0] + positions.t_angle_offset[..., None]
    angles = torch.cat(bands, dim=-1)  # (B, N, head_dim / 2)
    return angles.cos().float()[:, :, None], angles.sin().float()[:, :, None]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of ``x`` (B, N, heads, head_dim) by the given angles."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)  # (B, N, heads, head_dim / 2) each
    # same arithmetic as diffusers' WanAttnProcessor (float32 cos/sin promote bf16 inputs)
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2).type_as(x)
