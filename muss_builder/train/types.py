"""Records passed between the trainer's parts: pixels from shards, latents for the DiT.

Conventions shared by every part:
- boxes are normalised ``(x1, y1, x2, y2)`` in ``[0, 1]`` of the frame they were measured on;
- frame ranges are half-open ``[start, end)``;
- a shot of ``n = 4k + 1`` pixel frames becomes ``k + 1`` latent frames (Wan's causal VAE
  with temporal stride 4 encodes each shot on its own; the latents are concatenated in time);
- text segments: ``0`` = a token of the global caption, ``i + 1`` = a token of shot ``i``'s
  caption, ``-1`` = padding (attends nowhere, attended by nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

Box = tuple[float, float, float, float]

TEXT_PAD = -1
TEXT_GLOBAL = 0


@dataclass
class ReferenceCrop:
    """A reference image of a subject and where that subject is in its target shot."""

    image: torch.Tensor  # (3, h, w) float in [-1, 1], resized to the data config's ref size
    shot: int  # index into the example's shots (the shot this reference serves)
    box: Box  # normalised box of the subject in the target frame of that shot
    frame: int  # pixel frame index in ClipExample.video of the target frame
    subject: str = ""  # film subject id, for logs and the benchmark


@dataclass
class ClipExample:
    """One training sample in pixel space, as the shard loader yields it."""

    key: str
    video: torch.Tensor  # (T, 3, H, W) float in [-1, 1]; T = sum of shot lengths
    shot_frames: list[tuple[int, int]]  # [start, end) per shot into video; each length 4k + 1
    global_caption: str
    shot_captions: list[str]  # one per shot ("" when the shard has none)
    references: list[ReferenceCrop] = field(default_factory=list)
    # per shot, normalised boxes of the subjects seen in it (for the optional box loss weight)
    subject_boxes: list[list[Box]] = field(default_factory=list)
    fps: float = 0.0


@dataclass
class LatentExample:
    """One sample after the VAE and the text encoder: what ``train cache`` stores."""

    key: str
    latents: torch.Tensor  # (C, T_lat, H_lat, W_lat), clean (x0)
    shot_latent_frames: list[tuple[int, int]]  # [start, end) per shot in latent frames
    text_embeds: torch.Tensor  # (L, text_dim): global caption tokens then each shot's tokens
    text_segments: torch.Tensor  # (L,) long: TEXT_GLOBAL, shot index + 1, or TEXT_PAD
    ref_latents: torch.Tensor  # (R, C, 1, h_lat, w_lat); R may be 0
    ref_shots: torch.Tensor  # (R,) long: the shot each reference serves
    ref_boxes: torch.Tensor  # (R, 4) float normalised target boxes
    ref_latent_frames: torch.Tensor  # (R,) long: latent frame index of the target frame
    loss_weight: torch.Tensor  # (T_lat, H_lat, W_lat) float, 1 outside subject boxes


@dataclass
class LatentBatch:
    """A batch of LatentExamples of the same latent shape (the loader buckets by shape).

    Text and references are padded: text with TEXT_PAD segments, references with
    ``ref_shots == -1`` (a padded reference attends only itself and is never attended).
    """

    keys: list[str]
    latents: torch.Tensor  # (B, C, T_lat, H_lat, W_lat)
    shot_index: torch.Tensor  # (B, T_lat) long: the shot of each latent frame
    n_shots: torch.Tensor  # (B,) long
    text_embeds: torch.Tensor  # (B, L, text_dim)
    text_segments: torch.Tensor  # (B, L) long
    ref_latents: torch.Tensor  # (B, R, C, 1, h_lat, w_lat)
    ref_shots: torch.Tensor  # (B, R) long, -1 = padding
    ref_boxes: torch.Tensor  # (B, R, 4)
    ref_latent_frames: torch.Tensor  # (B, R) long
    loss_weight: torch.Tensor  # (B, T_lat, H_lat, W_lat)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> LatentBatch:
        """Move tensors to ``device``; float tensors also to ``dtype`` when given."""
        moved = {}
        for name, value in self.__dict__.items():
            if isinstance(value, torch.Tensor):
                floating = value.is_floating_point() and dtype is not None
                moved[name] = value.to(device, dtype) if floating else value.to(device)
            else:
                moved[name] = value
        return LatentBatch(**moved)
