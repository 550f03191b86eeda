"""A ``ClipExample`` as latents (``encode_example``: shots through the VAE, captions through
the text encoder), and latent examples as padded batches the DiT reads (``collate_latents``,
``bucket_batches``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch

from muss_builder.train.encoders import TextEncoder, WanVAE, latent_frame_of
from muss_builder.train.stream import ShapeBucketer
from muss_builder.train.types import (
    TEXT_GLOBAL,
    TEXT_PAD,
    ClipExample,
    LatentBatch,
    LatentExample,
)


def box_mask(
    boxes: list[tuple[float, float, float, float]], height: int, width: int
) -> torch.Tensor:
    """(height, width) bool: latent cells that overlap any of the normalised boxes."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        c0, r0 = min(width - 1, math.floor(x0 * width)), min(height - 1, math.floor(y0 * height))
        c1, r1 = max(c0 + 1, math.ceil(x1 * width)), max(r0 + 1, math.ceil(y1 * height))
        mask[r0:r1, c0:c1] = True
    return mask


def encode_example(
    ex: ClipExample, vae: WanVAE, text: TextEncoder, subject_loss_weight: float = 1.0
) -> LatentExample:
    """Encode a ClipExample: shots through the VAE, captions through the text encoder.

    ``text_embeds`` holds the global caption's tokens, then each shot caption's tokens;
    ``loss_weight`` is ``subject_loss_weight`` on latent cells inside the union of a shot's
    subject boxes (on all of that shot's latent frames) and 1 elsewhere.
    """
    latents, shot_latents = vae.encode_shots(ex.video, ex.shot_frames)
    channels, t_lat, h_lat, w_lat = latents.shape
    if len(ex.shot_captions) != len(ex.shot_frames):
        raise ValueError(
            f"{ex.key}: {len(ex.shot_captions)} shot captions for {len(ex.shot_frames)} shots"
        )
    embeds = text.encode([ex.global_caption, *ex.shot_captions])
    if any(len(e) == 0 for e in embeds):
        # a segment without tokens leaves its shot's cross-attention with nothing to attend
        raise ValueError(f"{ex.key}: the tokenizer gave a caption no tokens at all")
    segments = [
        torch.full((len(e),), TEXT_GLOBAL + i, dtype=torch.long) for i, e in enumerate(embeds)
    ]
    ref_latents = (
        vae.encode_images(torch.stack([r.image for r in ex.references])) if ex.references else None
    )
    ref_frames = []
    for ref in ex.references:
        start, end = ex.shot_frames[ref.shot]
        if not start <= ref.frame < end:
            raise ValueError(
                f"{ex.key}: reference frame {ref.frame} is outside its shot "
                f"{ref.shot} [{start}, {end})"
            )
        ref_frames.append(shot_latents[ref.shot][0] + latent_frame_of(ref.frame - start))
    weight = torch.ones(t_lat, h_lat, w_lat)
    if subject_loss_weight != 1.0:
        for (start, end), boxes in zip(shot_latents, ex.subject_boxes, strict=False):
            weight[start:end, box_mask(boxes, h_lat, w_lat)] = subject_loss_weight
    # no references: R = 0 with the video's latent size, a shape any patchify accepts
    empty_refs = torch.zeros(0, channels, 1, h_lat, w_lat)
    return LatentExample(
        key=ex.key,
        latents=latents,
        shot_latent_frames=shot_latents,
        text_embeds=torch.cat(embeds),
        text_segments=torch.cat(segments),
        ref_latents=empty_refs if ref_latents is None else ref_latents,
        ref_shots=torch.tensor([r.shot for r in ex.references], dtype=torch.long),
        ref_boxes=torch.tensor([list(r.box) for r in ex.references], dtype=torch.float32).reshape(
            -1, 4
        ),
        ref_latent_frames=torch.tensor(ref_frames, dtype=torch.long),
        loss_weight=weight,
    )


def collate_latents(examples: list[LatentExample]) -> LatentBatch:
    """Stack same-shape LatentExamples; pad text (segment -1) and references (shot -1)."""
    if not examples:
        raise ValueError("cannot collate an empty list")
    shapes = {tuple(e.latents.shape) for e in examples}
    if len(shapes) > 1:
        listing = ", ".join(f"{e.key} {tuple(e.latents.shape)}" for e in examples)
        raise ValueError(
            f"cannot batch latents of different shapes ({listing}): group them "
            "by shape first (bucket_batches)"
        )
    dims = {e.text_embeds.shape[-1] for e in examples}
    if len(dims) > 1:
        raise ValueError(f"text embeddings of different widths {sorted(dims)} in one batch")
    ref_shapes = {tuple(e.ref_latents.shape[1:]) for e in examples if len(e.ref_latents)}
    if len(ref_shapes) > 1:
        raise ValueError(f"reference latents of different shapes {sorted(ref_shapes)}")
    ref_shape = ref_shapes.pop() if ref_shapes else tuple(examples[0].ref_latents.shape[1:])
    batch, t_lat = len(examples), examples[0].latents.shape[1]
    text_len = max(len(e.text_segments) for e in examples)
    n_refs = max(len(e.ref_shots) for e in examples)
    text = torch.zeros(batch, text_len, dims.pop())
    segments = torch.full((batch, text_len), TEXT_PAD, dtype=torch.long)
    refs = torch.zeros(batch, n_refs, *ref_shape)
    ref_shots = torch.full((batch, n_refs), -1, dtype=torch.long)
    ref_boxes = torch.zeros(batch, n_refs, 4)
    ref_frames = torch.zeros(batch, n_refs, dtype=torch.long)
    shot_index = torch.full((batch, t_lat), -1, dtype=torch.long)
    for b, e in enumerate(examples):
        length, r = len(e.text_segments), len(e.ref_shots)
        text[b, :length], segments[b, :length] = e.text_embeds, e.text_segments
        if r:  # an example without references may carry any spatial size in its empty tensor
            refs[b, :r], ref_shots[b, :r] = e.ref_latents, e.ref_shots
            ref_boxes[b, :r], ref_frames[b, :r] = e.ref_boxes, e.ref_latent_frames
        for shot, (start, end) in enumerate(e.shot_latent_frames):
            shot_index[b, start:end] = shot
        if (shot_index[b] < 0).any():
            raise ValueError(
                f"{e.key}: shot_latent_frames {e.shot_latent_frames} do not cover "
                f"all {t_lat} latent frames"
            )
    return LatentBatch(
        keys=[e.key for e in examples],
        latents=torch.stack([e.latents for e in examples]),
        shot_index=shot_index,
        n_shots=torch.tensor([len(e.shot_latent_frames) for e in examples], dtype=torch.long),
        text_embeds=text,
        text_segments=segments,
        ref_latents=refs,
        ref_shots=ref_shots,
        ref_boxes=ref_boxes,
        ref_latent_frames=ref_frames,
        loss_weight=torch.stack([e.loss_weight for e in examples]),
    )


def bucket_batches(
    examples: Iterable[LatentExample], batch_size: int, *, drop_last: bool = False
) -> Iterator[LatentBatch]:
    """Group a stream into same-latent-shape batches of ``batch_size``; at the end, the
    partial batches (oldest first) unless ``drop_last``. For exact resume, batch inside the
    stream instead (``LatentShardDataset(batch_size=...)``), which saves what is pending."""
    bucketer = ShapeBucketer(batch_size)
    for example in examples:
        full = bucketer.add(tuple(example.latents.shape), example)
        if full is not None:
            yield collate_latents(full)
    for partial in bucketer.flush():
        if not drop_last:
            yield collate_latents(partial)
