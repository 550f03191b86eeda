"""Attention masks: shot-restricted references, per-shot captions, padding, fast paths."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from muss_builder.train.masks import cross_attention_mask, self_attention_mask


def _rows(*rows: str) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in row] for row in rows])


def test_self_mask_keeps_each_shots_references_to_that_shot() -> None:
    video_shots = torch.tensor([[0, 0, 1, 1]])
    ref_shots = torch.tensor([[1, 0, -1]])  # ref0 serves shot 1, ref1 shot 0, ref2 is padding
    mask = self_attention_mask(video_shots, ref_shots, tokens_per_ref=1)
    assert mask is not None and mask.shape == (1, 1, 7, 7)
    expected = _rows(
        # keys: v0 v1 v2 v3 r0 r1 r2
        "1111010",  # v0 (shot 0): all video + shot 0's ref1
        "1111010",  # v1
        "1111100",  # v2 (shot 1): all video + shot 1's ref0
        "1111100",  # v3
        "0011100",  # r0 (shot 1): shot 1's video and itself
        "1100010",  # r1 (shot 0): shot 0's video and itself
        "0000001",  # r2 (padding): only itself
    )
    assert torch.equal(mask[0, 0], expected)


def test_references_of_one_shot_see_each_other_and_all_their_own_tokens() -> None:
    video_shots = torch.tensor([[0, 1]])
    ref_shots = torch.tensor([[1, 1, -1]])  # two subjects of shot 1, then a padded slot
    mask = self_attention_mask(video_shots, ref_shots, tokens_per_ref=2)
    assert mask is not None
    expected = _rows(
        # v0 v1 | r0 r0 r1 r1 r2 r2
        "11000000",
        "11111100",
        "01111100",
        "01111100",
        "01111100",
        "01111100",
        "00000011",
        "00000011",
    )
    assert torch.equal(mask[0, 0], expected)


def test_self_mask_fast_paths_return_none() -> None:
    assert self_attention_mask(torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 0), 4) is None
    # one shot whose references are all real: everything may attend everything
    assert self_attention_mask(torch.zeros(1, 6, dtype=torch.long), torch.zeros(1, 2), 4) is None
    # a padded slot breaks it: nothing may attend the padding
    assert (
        self_attention_mask(torch.zeros(1, 6, dtype=torch.long), torch.tensor([[0, -1]]), 4)
        is not None
    )


def test_self_mask_is_per_sample_in_a_batch() -> None:
    video_shots = torch.tensor([[0, 1], [0, 0]])
    ref_shots = torch.tensor([[0], [-1]])
    mask = self_attention_mask(video_shots, ref_shots, 1)
    assert mask is not None
    assert torch.equal(mask[0, 0], _rows("111", "110", "101"))
    assert torch.equal(mask[1, 0], _rows("110", "110", "001"))


def test_cross_mask_gives_each_shot_the_global_caption_and_its_own() -> None:
    query_shots = torch.tensor([[0, 0, 1, -1]])  # two shot-0 tokens, a shot-1 token, a padded ref
    segments = torch.tensor([[0, 0, 1, 2, 2, -1]])  # global x2, shot 0, shot 1 x2, padding
    mask, has_text = cross_attention_mask(query_shots, segments)
    assert has_text is None
    assert mask is not None and mask.shape == (1, 1, 4, 6)
    expected = _rows("111000", "111000", "110110", "110000")
    assert torch.equal(mask[0, 0], expected)


def test_cross_mask_is_none_for_one_shot_and_unpadded_text() -> None:
    shots = torch.zeros(2, 10, dtype=torch.long)
    assert cross_attention_mask(shots, torch.zeros(2, 7, dtype=torch.long)) == (None, None)
    # global + shot 0 caption, no padding: still all-true
    assert cross_attention_mask(shots, torch.tensor([[0, 0, 1]] * 2)) == (None, None)
    mask, _ = cross_attention_mask(shots, torch.tensor([[0, 0, -1]] * 2))
    assert mask is not None and not mask[..., 2].any()  # padding attended by nothing


def test_a_query_with_no_text_is_flagged_and_kept_finite() -> None:
    query_shots = torch.tensor([[0, 1]])
    segments = torch.tensor([[1, -1]])  # shot 0 has a caption; no global, nothing for shot 1
    mask, has_text = cross_attention_mask(query_shots, segments)
    assert has_text is not None and has_text.tolist() == [[True, False]]
    assert mask is not None and torch.equal(mask[0, 0], _rows("10", "11"))
    q, k = torch.randn(1, 1, 2, 8), torch.randn(1, 1, 2, 8)
    out = F.scaled_dot_product_attention(q, k, k, attn_mask=mask)
    assert torch.isfinite(out).all()


def test_sdpa_with_the_mask_ignores_what_it_hides() -> None:
    gen = torch.Generator().manual_seed(0)
    video_shots = torch.tensor([[0, 0, 1, 1]])
    ref_shots = torch.tensor([[1, 0, -1]])
    mask = self_attention_mask(video_shots, ref_shots, 2)
    q, k, v = (torch.randn(1, 2, 10, 8, generator=gen) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # change shot 1's reference (tokens 4, 5) and the padding (8, 9): shot 0's video tokens
    # and shot 0's reference (6, 7) must not notice; shot 1's video tokens must
    k2, v2 = k.clone(), v.clone()
    k2[:, :, [4, 5, 8, 9]] += 3.0
    v2[:, :, [4, 5, 8, 9]] -= 2.0
    out2 = F.scaled_dot_product_attention(q, k2, v2, attn_mask=mask)
    unaffected = [0, 1, 6, 7]
    assert torch.allclose(out[:, :, unaffected], out2[:, :, unaffected], atol=1e-6)
    assert not torch.allclose(out[:, :, [2, 3]], out2[:, :, [2, 3]], atol=1e-3)


def _rule_cell_by_cell(video_shots: list[int], ref_shots: list[int], per_ref: int) -> list:
    """The module docstring's rule, one (query, key) pair at a time: (shot, reference or None)
    per token, video tokens first, then each reference's ``per_ref`` tokens."""
    tokens = [(s, None) for s in video_shots]
    tokens += [(s, r) for r, s in enumerate(ref_shots) for _ in range(per_ref)]

    def may_attend(q: tuple, k: tuple) -> bool:
        (q_shot, q_ref), (k_shot, k_ref) = q, k
        if q_ref is None and k_ref is None:
            return True  # video to video: one narrative
        if q_ref is None or k_ref is None:
            return q_shot == k_shot  # video and the references of its shot (padding: -1)
        return q_ref == k_ref or (q_shot == k_shot and q_shot >= 0)

    return [[may_attend(q, k) for k in tokens] for q in tokens]


def random_layouts(
    seed: int, count: int, limits: tuple[int, int, int], per_ref_limit: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """``count`` random (video_shots (B, N_v), ref_shots (B, R), tokens per reference): B, N_v
    and R below ``limits``, 1-3 shots, padded (-1) reference slots among the real ones."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        bsz, n_video, n_refs = (int(torch.randint(1, k, (), generator=gen)) for k in limits)
        shots = int(torch.randint(1, 4, (), generator=gen))
        video_shots = torch.randint(0, shots, (bsz, n_video), generator=gen)
        ref_shots = torch.randint(-1, shots, (bsz, n_refs), generator=gen)
        yield video_shots, ref_shots, int(torch.randint(1, per_ref_limit, (), generator=gen))


def test_self_mask_matches_the_rule_and_is_none_exactly_when_all_may_attend() -> None:
    for video_shots, ref_shots, per_ref in random_layouts(7, 300, (4, 8, 5), 3):
        expected = torch.tensor(
            [
                _rule_cell_by_cell(v, r, per_ref)
                for v, r in zip(video_shots.tolist(), ref_shots.tolist(), strict=True)
            ]
        )
        got = self_attention_mask(video_shots, ref_shots, per_ref)
        if bool(expected.all()):
            assert got is None
        else:
            assert got is not None and torch.equal(got[:, 0], expected)
