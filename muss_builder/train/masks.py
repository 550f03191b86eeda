"""Boolean attention masks (True = may attend) for the multi-shot DiT, in SDPA's layout.

Self-attention runs over ``[video tokens; reference tokens]``:

- a video token of shot ``s`` attends every video token (all shots: the narrative is one
  sequence) and the tokens of the references that serve shot ``s``;
- a reference token of shot ``s`` attends the video tokens of shot ``s`` and the tokens of the
  references of shot ``s`` (its own and its shot-mates': several subjects of one shot);
- a padded reference (shot ``-1``) attends only its own tokens and nothing attends it.

Cross-attention: a token of shot ``s`` attends the global caption (segment 0) and shot ``s``'s
caption (segment ``s + 1``); padding (segment -1) is attended by nothing. A query with no text
to attend (a padded reference, or a shot whose caption and global caption are both empty) gets
a row that allows everything, so SDPA does not produce NaN, and a ``query_has_text`` flag with
which the model zeroes that cross-attention output: attending nothing adds nothing.

A mask that allows everything is returned as ``None`` so SDPA can take its fast kernels.
"""

from __future__ import annotations

import torch

from muss_builder.train.types import TEXT_GLOBAL, TEXT_PAD


def self_attention_mask(
    video_shots: torch.Tensor, ref_shots: torch.Tensor, tokens_per_ref: int
) -> torch.Tensor | None:
    """(B, 1, N_v + R * tokens_per_ref, same) mask, or None when everything may attend.

    ``video_shots``: (B, N_v) shot of each video token; ``ref_shots``: (B, R) shot of each
    reference, -1 for padding. Reference tokens follow the video tokens, reference-major.
    """
    batch, n_video = video_shots.shape
    n_refs = ref_shots.shape[1]
    if n_refs == 0 or tokens_per_ref == 0 or self_mask_allows_all(video_shots, ref_shots):
        return None  # e.g. one shot whose references are all real: nothing to hide
    token_ref_shot = ref_shots.repeat_interleave(tokens_per_ref, dim=1)  # (B, N_r)
    token_ref_id = torch.arange(n_refs, device=ref_shots.device).repeat_interleave(tokens_per_ref)
    n_ref_tokens = token_ref_shot.shape[1]

    video_to_video = torch.ones(batch, n_video, n_video, dtype=torch.bool, device=ref_shots.device)
    # (B, N_v, N_r): video query of shot s sees references of shot s (padding -1 never matches)
    video_to_ref = video_shots[:, :, None] == token_ref_shot[:, None, :]
    ref_is_real = (token_ref_shot >= 0)[:, :, None]  # (B, N_r, 1)
    ref_to_video = video_to_ref.transpose(1, 2)  # symmetric rule: (B, N_r, N_v)
    same_ref = (token_ref_id[:, None] == token_ref_id[None, :]).expand(
        batch, n_ref_tokens, n_ref_tokens
    )
    same_shot = (token_ref_shot[:, :, None] == token_ref_shot[:, None, :]) & ref_is_real
    ref_to_ref = same_ref | same_shot  # (B, N_r, N_r)

    mask = torch.cat(
        [
            torch.cat([video_to_video, video_to_ref], dim=2),
            torch.cat([ref_to_video, ref_to_ref], dim=2),
        ],
        dim=1,
    )  # (B, N, N)
    return mask[:, None]


def self_mask_allows_all(video_shots: torch.Tensor, ref_shots: torch.Tensor) -> bool:
    """Whether the self-attention rule allows every pair, decided on the (B, N_v, R) and
    (B, R, R) relations of shots and references, before any (B, N, N) mask is built: every
    video token shares its shot with every reference, and every two references are the same
    reference or serve the same real shot (a padded slot sees only itself)."""
    video_sees_refs = video_shots[:, :, None] == ref_shots[:, None, :]  # (B, N_v, R)
    own = torch.eye(ref_shots.shape[1], dtype=torch.bool, device=ref_shots.device)
    same_real_shot = (ref_shots[:, :, None] == ref_shots[:, None, :]) & (ref_shots >= 0)[..., None]
    return bool(video_sees_refs.all() & (same_real_shot | own).all())


def cross_attention_mask(
    query_shots: torch.Tensor, text_segments: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-shot text mask for cross-attention.

    ``query_shots``: (B, N) shot of each query token (-1 = padded reference);
    ``text_segments``: (B, L) TEXT_GLOBAL, shot + 1, or TEXT_PAD. Returns ``(mask, has_text)``:
    mask (B, 1, N, L) or None when every query may attend every text token; has_text (B, N)
    bool or None when every query has some text to attend.
    """
    segments = text_segments[:, None, :]  # (B, 1, L)
    own_caption = segments == (query_shots[:, :, None] + 1)  # (B, N, L)
    allowed = (segments != TEXT_PAD) & ((segments == TEXT_GLOBAL) | own_caption)
    has_text = allowed.any(dim=2)  # (B, N)
    all_have_text = bool(has_text.all())
    if not all_have_text:
        allowed = allowed | ~has_text[:, :, None]  # keep SDPA's softmax finite on empty rows
    mask = None if bool(allowed.all()) else allowed[:, None]
    return mask, (None if all_have_text else has_text)
