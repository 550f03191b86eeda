"""3D RoPE on float positions: Wan's split, narrative shifts, reference box sampling."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from muss_builder.train.presets import RopeConfig
from muss_builder.train.rope import (
    TokenPositions,
    apply_rotary,
    axis_dims,
    reference_positions,
    rotary_cos_sin,
    video_positions,
)


@pytest.mark.parametrize("head_dim", [12, 32, 128])
def test_integer_positions_reproduce_diffusers_wan_rope_bit_for_bit(head_dim: int) -> None:
    grid = (5, 4, 6)
    wan = WanRotaryPosEmbed(head_dim, (1, 2, 2), max_seq_len=64)
    assert axis_dims(head_dim) == (wan.t_dim, wan.h_dim, wan.w_dim)
    latents = torch.zeros(1, 4, grid[0], grid[1] * 2, grid[2] * 2)
    wan_cos, wan_sin = wan(latents)  # (1, N, 1, head_dim), each angle repeated for its pair
    # one shot: the narrative shift of shot 0 is zero whatever phi is
    positions = video_positions(torch.zeros(1, grid[0], dtype=torch.long), grid, 1, RopeConfig())
    cos, sin = rotary_cos_sin(positions, head_dim, theta=10000.0)
    assert torch.equal(cos, wan_cos[..., 0::2])
    assert torch.equal(sin, wan_sin[..., 1::2])


def test_narrative_shift_moves_shot_i_by_i_phi_in_position_mode() -> None:
    shot_index = torch.tensor([[0, 0, 1, 1, 1, 2]])  # (B=1, T_lat=6)
    grid = (6, 2, 3)
    pos = video_positions(shot_index, grid, 1, RopeConfig(phi=0.5, mode="position"))
    coords = pos.coords.reshape(6, 2, 3, 3)  # token order is (t, h, w) like the patch embedding
    expected_t = torch.tensor([0.0, 1.0, 2.5, 3.5, 4.5, 6.0], dtype=coords.dtype)
    assert torch.equal(coords[:, 0, 0, 0], expected_t)
    assert torch.equal(coords[..., 0], expected_t[:, None, None].expand(6, 2, 3))
    assert torch.equal(coords[2, :, :, 1], torch.tensor([[0.0] * 3, [1.0] * 3], dtype=coords.dtype))
    assert torch.equal(coords[2, 1, :, 2], torch.tensor([0.0, 1.0, 2.0], dtype=coords.dtype))
    assert not pos.t_angle_offset.any()


def test_angle_mode_keeps_integer_frames_and_rotates_temporal_pairs_by_i_phi() -> None:
    head_dim, phi = 32, 0.7
    shot_index = torch.tensor([[0, 0, 1, 2]])
    grid = (4, 2, 2)
    angle = video_positions(shot_index, grid, 1, RopeConfig(phi=phi, mode="angle"))
    plain = video_positions(shot_index, grid, 1, RopeConfig(phi=0.0))
    assert torch.equal(angle.coords, plain.coords)
    shots_per_token = shot_index.repeat_interleave(4, dim=1).to(torch.float64)
    assert torch.allclose(angle.t_angle_offset, shots_per_token * phi)

    x = torch.randn(1, 16, 2, head_dim, dtype=torch.float64)
    rotated = apply_rotary(x, *rotary_cos_sin(angle, head_dim, 10000.0))
    baseline = apply_rotary(x, *rotary_cos_sin(plain, head_dim, 10000.0))
    # expected: the baseline's temporal pairs, as complex numbers, times exp(i * shot * phi)
    t_pairs = axis_dims(head_dim)[0] // 2
    as_complex = torch.view_as_complex(baseline.unflatten(-1, (-1, 2)).clone())
    turn = torch.polar(torch.ones(16, dtype=torch.float64), shots_per_token[0] * phi)
    as_complex[..., :t_pairs] *= turn[None, :, None, None]
    expected = torch.view_as_real(as_complex).flatten(-2)
    assert torch.allclose(rotated, expected, atol=1e-6)
    assert not torch.allclose(rotated, baseline, atol=1e-3)  # the offset did something


def test_reference_tokens_sample_the_target_box_at_the_shifted_target_frame() -> None:
    shot_index = torch.tensor([[0, 0, 1, 1, 1]])  # frame 3 is in shot 1
    video_grid = (5, 10, 8)  # (T_tok, H_tok, W_tok)
    box = torch.tensor([[[0.25, 0.1, 0.75, 0.6]]])  # (x1, y1, x2, y2): Y 1..6, X 2..6 tokens
    frames = torch.tensor([[3]])
    pos = reference_positions(box, frames, shot_index, video_grid, (2, 4), 1, RopeConfig(phi=0.5))
    coords = pos.coords.reshape(2, 4, 3)  # (J, K, 3), row-major like the patch embedding
    # h = Y1 + (Y2 - Y1) / J * j with Y = y * H_tok; w = X1 + (X2 - X1) / K * k
    assert torch.allclose(coords[:, 0, 1], torch.tensor([1.0, 3.5], dtype=coords.dtype))
    assert torch.allclose(coords[0, :, 2], torch.tensor([2.0, 3.0, 4.0, 5.0], dtype=coords.dtype))
    assert torch.allclose(coords[..., 0], torch.full((2, 4), 3.5, dtype=coords.dtype))

    angle = reference_positions(
        box, frames, shot_index, video_grid, (2, 4), 1, RopeConfig(0.5, "angle")
    )
    assert torch.allclose(angle.coords[..., 0], torch.full((1, 8), 3.0, dtype=coords.dtype))
    assert torch.allclose(angle.t_angle_offset, torch.full((1, 8), 0.5, dtype=coords.dtype))


def test_random_reference_boxes_are_covered_from_their_top_left_corner_inside_the_box() -> None:
    gen = torch.Generator().manual_seed(3)
    corners = torch.rand(2, 5, 2, 2, generator=gen)  # (B, R, point, xy)
    low, high = corners.min(dim=2).values, corners.max(dim=2).values + 1e-3
    boxes = torch.cat([low, high.clamp(max=1.0)], dim=-1)  # (B, R, 4)
    shot_index = torch.zeros(2, 4, dtype=torch.long)
    frames = torch.randint(0, 4, (2, 5), generator=gen)
    video_grid, ref_grid = (4, 12, 20), (3, 5)
    pos = reference_positions(boxes, frames, shot_index, video_grid, ref_grid, 1, RopeConfig())
    coords = pos.coords.reshape(2, 5, 3, 5, 3)
    box64 = boxes.double()
    top, left = box64[..., 1] * 12, box64[..., 0] * 20
    bottom, right = box64[..., 3] * 12, box64[..., 2] * 20
    h, w = coords[..., 1], coords[..., 2]
    assert torch.allclose(h[:, :, 0, 0], top) and torch.allclose(w[:, :, 0, 0], left)
    assert (h >= top[..., None, None] - 1e-9).all() and (h < bottom[..., None, None]).all()
    assert (w >= left[..., None, None] - 1e-9).all() and (w < right[..., None, None]).all()
    assert torch.equal(coords[..., 0], frames[..., None, None].double().expand(2, 5, 3, 5))


def _scores(q: torch.Tensor, k: torch.Tensor, positions: TokenPositions) -> torch.Tensor:
    cos, sin = rotary_cos_sin(positions, q.shape[-1], 10000.0)
    q_rot, k_rot = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    return torch.einsum("bnhd,bmhd->bhnm", q_rot, k_rot)


def test_attention_scores_depend_only_on_relative_float_positions() -> None:
    gen = torch.Generator().manual_seed(0)
    n, head_dim = 12, 32
    q = torch.randn(1, n, 2, head_dim, generator=gen, dtype=torch.float64)
    k = torch.randn(1, n, 2, head_dim, generator=gen, dtype=torch.float64)
    coords = torch.rand(1, n, 3, generator=gen, dtype=torch.float64) * 20  # fractional
    offset = torch.rand(1, n, generator=gen, dtype=torch.float64)
    base = _scores(q, k, TokenPositions(coords, offset))
    shift = torch.tensor([2.3, -1.7, 5.0], dtype=torch.float64)
    shifted = _scores(q, k, TokenPositions(coords + shift, offset + 0.9))
    # cos/sin are rounded to float32, so scores agree to ~1e-6 relative, not exactly
    assert torch.allclose(base, shifted, atol=1e-4)
    moved_one = coords.clone()
    moved_one[0, 0] += shift  # a shift of one token is a relative change: scores must move
    assert not torch.allclose(base, _scores(q, k, TokenPositions(moved_one, offset)), atol=1e-2)


def test_rotation_preserves_norm_and_dtype() -> None:
    x = torch.randn(2, 7, 3, 24, dtype=torch.bfloat16)
    pos = TokenPositions(torch.rand(2, 7, 3, dtype=torch.float64) * 9, torch.zeros(2, 7))
    out = apply_rotary(x, *rotary_cos_sin(pos, 24, 10000.0))
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float().norm(dim=-1), x.float().norm(dim=-1), rtol=2e-2)
