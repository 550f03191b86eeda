"""MultiShotDiT: equals diffusers' Wan on plain input, loads/saves its format, and the
multi-shot additions behave (masks inside the model, padding, permutations, gradients, FLOPs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed
from safetensors.torch import load_file, save_file
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from muss_builder.train.model import MultiShotDiT, additive_mask, forward_flops
from muss_builder.train.presets import PRESETS, ModelConfig, RopeConfig, get_preset
from muss_builder.train.types import LatentBatch

# a tiny Wan: 2 heads of 12 channels (RoPE bands t/h/w = 4/4/4), 4 latent channels
WAN_TINY = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 4,
    "out_channels": 4,
    "text_dim": 16,
    "freq_dim": 32,
    "ffn_dim": 40,
    "num_layers": 2,
    "rope_max_seq_len": 64,
}
TINY = get_preset("tiny", in_channels=4, out_channels=4, text_dim=16)


def make_batch(
    x: torch.Tensor,
    shot_index: list[list[int]],
    text_segments: list[list[int]],
    ref_shots: list[list[int]] | None = None,
    ref_frames: list[list[int]] | None = None,
    text_dim: int = 16,
    ref_hw: tuple[int, int] = (4, 4),
    seed: int = 0,
) -> LatentBatch:
    gen = torch.Generator().manual_seed(seed)
    bsz, channels, frames, height, width = x.shape
    segments = torch.tensor(text_segments)
    shots = torch.tensor(ref_shots if ref_shots is not None else [[]] * bsz, dtype=torch.long)
    n_refs = shots.shape[1]
    boxes = torch.tensor([0.1, 0.2, 0.6, 0.9]).repeat(bsz, n_refs, 1)
    return LatentBatch(
        keys=[f"k{i}" for i in range(bsz)],
        latents=x,
        shot_index=torch.tensor(shot_index),
        n_shots=torch.tensor([max(s) + 1 for s in shot_index]),
        text_embeds=torch.randn(bsz, segments.shape[1], text_dim, generator=gen),
        text_segments=segments,
        ref_latents=torch.randn(bsz, n_refs, channels, 1, *ref_hw, generator=gen),
        ref_shots=shots,
        ref_boxes=boxes,
        ref_latent_frames=torch.tensor(ref_frames or [[0] * n_refs] * bsz, dtype=torch.long),
        loss_weight=torch.ones(bsz, frames, height, width),
    )


def plain_input(bsz: int = 2, frames: int = 3, text_len: int = 5) -> tuple:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(bsz, 4, frames, 6, 8, generator=gen)
    t = torch.rand(bsz, generator=gen)
    batch = make_batch(x, [[0] * frames] * bsz, [[0] * text_len] * bsz)
    return x, t, batch


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[WanTransformer3DModel, Path]:
    torch.manual_seed(0)
    wan = WanTransformer3DModel(**WAN_TINY).eval()
    folder = tmp_path_factory.mktemp("wan_tiny")
    wan.save_pretrained(folder)
    return wan, folder


@pytest.mark.parametrize(
    "rope", [RopeConfig(phi=0.0), RopeConfig(), RopeConfig(phi=0.5, mode="angle")], ids=str
)
def test_loads_a_diffusers_wan_checkpoint_and_matches_its_forward(wan_folder, rope) -> None:
    wan, folder = wan_folder
    model = MultiShotDiT.from_pretrained(folder, rope=rope).eval()  # one shot: shift 0 * phi
    x, t, batch = plain_input()
    with torch.no_grad():
        expected = wan(x, t * 1000, batch.text_embeds, return_dict=False)[0]
        got = model(x, t, batch)
    # same fp32 ops in the same order (the same SDPA kernel on CPU): observed bit-identical.
    # The tolerance leaves room for another SDPA kernel / BLAS blocking (a few fp32 ulps).
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_bfloat16_forward_matches_diffusers(wan_folder) -> None:
    _, folder = wan_folder
    wan = WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(folder))
    wan.load_state_dict(load_file(folder / "diffusion_pytorch_model.safetensors"))
    wan = wan.to(torch.bfloat16).eval()
    # .to() also rounds diffusers' RoPE table to bf16 (its from_pretrained keeps it in fp32,
    # which needs `accelerate`); rebuild it in fp32 as our RoPE computes it
    wan.rope = WanRotaryPosEmbed(WAN_TINY["attention_head_dim"], (1, 2, 2), 64)
    model = MultiShotDiT.from_pretrained(folder, dtype=torch.bfloat16).eval()
    x, t, batch = plain_input()
    with torch.no_grad():
        expected = wan(x.bfloat16(), t * 1000, batch.text_embeds.bfloat16(), return_dict=False)[0]
        got = model(x.bfloat16(), t, batch.to("cpu", torch.bfloat16))
    # observed bit-identical; allow ~2 bf16 ulps so an upstream kernel change is not a failure
    torch.testing.assert_close(got.float(), expected.float(), rtol=1.6e-2, atol=1e-2)


def test_save_pretrained_is_a_folder_diffusers_loads(wan_folder, tmp_path: Path) -> None:
    _, folder = wan_folder
    model = MultiShotDiT.from_pretrained(folder, rope=RopeConfig(phi=0.25, mode="angle"))
    model.save_pretrained(tmp_path / "ours")
    # diffusers' from_pretrained needs `accelerate` for Wan (fp32-kept modules); its config
    # reader and a strict state-dict load check the same contract without it
    wan = WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(tmp_path / "ours"))
    state = load_file(tmp_path / "ours/diffusion_pytorch_model.safetensors")
    wan.load_state_dict(state, strict=True)
    wan.eval()
    x, t, batch = plain_input()
    with torch.no_grad():
        torch.testing.assert_close(
            wan(x, t * 1000, batch.text_embeds, return_dict=False)[0], model.eval()(x, t, batch)
        )
    again = MultiShotDiT.from_pretrained(tmp_path / "ours")
    assert again.rope_config == RopeConfig(phi=0.25, mode="angle")
    assert again.config == model.config


def test_sharded_folders_load_both_ways(wan_folder, tmp_path: Path) -> None:
    wan, _ = wan_folder
    wan.save_pretrained(tmp_path / "diffusers_sharded", max_shard_size="20KB")
    assert (tmp_path / "diffusers_sharded/diffusion_pytorch_model.safetensors.index.json").exists()
    model = MultiShotDiT.from_pretrained(tmp_path / "diffusers_sharded")
    model.save_pretrained(tmp_path / "ours_sharded", max_shard_bytes=20_000)
    shards = sorted((tmp_path / "ours_sharded").glob("*-of-*.safetensors"))
    assert len(shards) > 1
    reloaded = MultiShotDiT.from_pretrained(tmp_path / "ours_sharded")
    for (name, a), (_, b) in zip(
        wan.state_dict().items(), reloaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_pipeline_folder_loads_its_transformer(wan_folder, tmp_path: Path) -> None:
    wan, _ = wan_folder
    wan.save_pretrained(tmp_path / "pipeline/transformer")  # Wan2.1-T2V-1.3B-Diffusers layout
    model = MultiShotDiT.from_pretrained(tmp_path / "pipeline")
    assert torch.equal(model.proj_out.weight, wan.proj_out.weight)


def test_mismatched_checkpoint_names_its_keys(wan_folder, tmp_path: Path) -> None:
    _, folder = wan_folder
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((folder / "config.json").read_text())
    state = load_file(folder / "diffusion_pytorch_model.safetensors")
    state["blocks.0.attn1.to_qq.weight"] = state.pop("blocks.0.attn1.to_q.weight")
    state["proj_out.bias"] = torch.zeros(3)
    save_file(state, bad / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ValueError) as err:
        MultiShotDiT.from_pretrained(bad)
    message = str(err.value)
    assert "missing keys: blocks.0.attn1.to_q.weight" in message
    assert "unexpected keys: blocks.0.attn1.to_qq.weight" in message
    assert "proj_out.bias (3,)" in message


def test_image_to_video_configs_and_non_model_folders_are_refused(tmp_path: Path) -> None:
    config = {**WAN_TINY, "image_dim": 32, "added_kv_proj_dim": 24}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="image_dim=32"):
        MultiShotDiT.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        MultiShotDiT.from_pretrained(tmp_path / "nowhere")


def test_presets_map_to_diffusers_configs_of_the_same_size() -> None:
    assert get_preset("wan1.3b").to_diffusers_config()["num_attention_heads"] == 12
    for name, config in PRESETS.items():
        diffusers_config = config.to_diffusers_config()
        assert ModelConfig.from_diffusers_config(diffusers_config) == config
        init = {k: v for k, v in diffusers_config.items() if not k.startswith("_")}
        with torch.device("meta"):
            ours = sum(p.numel() for p in MultiShotDiT(config).parameters())
            theirs = sum(p.numel() for p in WanTransformer3DModel(**init).parameters())
        assert ours == theirs, name
    with pytest.raises(KeyError, match="known: tiny"):
        get_preset("huge")
    with pytest.raises(TypeError, match="hidden"):
        get_preset("tiny", hidden=3)
    with pytest.raises(ValueError, match="divisible"):
        get_preset("tiny", num_heads=3)


def multi_shot_input(n_layers: int = 2, phi: float = 0.5) -> tuple:
    """3 shots over 5 latent frames, per-shot captions, refs for shots 0 and 2 (+1 padded)."""
    torch.manual_seed(0)
    model = MultiShotDiT(dataclasses.replace(TINY, num_layers=n_layers), RopeConfig(phi=phi))
    # Wan's init zeroes the output weight (zero velocity, no gradient upstream); give it
    # values as training would, so outputs and gradients show what the network computes
    torch.nn.init.normal_(model.proj_out.weight, std=0.02)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 5, 6, 8, generator=gen)
    t = torch.tensor([0.3, 0.8])
    segments = [[0, 0, 1, 1, 2, 3, 3, -1]] * 2
    batch = make_batch(
        x,
        shot_index=[[0, 0, 1, 2, 2]] * 2,
        text_segments=segments,
        ref_shots=[[0, 2, -1], [2, -1, -1]],
        ref_frames=[[1, 3, 0], [4, 0, 0]],
    )
    return model, x, t, batch


def test_gradients_reach_every_parameter_and_the_references() -> None:
    model, x, t, batch = multi_shot_input()
    with torch.no_grad():
        assert not MultiShotDiT(model.config)(x, t, batch).any()  # fresh: zero velocity
    batch.ref_latents.requires_grad_(True)
    out = model(x, t, batch)
    assert out.shape == x.shape
    out.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    ref_grad = batch.ref_latents.grad
    assert ref_grad[0, :2].abs().sum() > 0 and ref_grad[1, 0].abs().sum() > 0
    assert ref_grad[0, 2].abs().sum() == 0 and ref_grad[1, 1:].abs().sum() == 0  # padding

    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing = True
    model(x, t, batch).square().mean().backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, grads[name], rtol=1e-4, atol=1e-7)


def _shot_frames(out: torch.Tensor, frames: list[int]) -> torch.Tensor:
    return out[:, :, frames]


def test_one_layer_keeps_shot_zero_blind_to_shot_twos_reference_and_caption() -> None:
    # one block: shot 0's tokens read shot 2's video tokens as they were BEFORE the block, so
    # shot 2's reference and caption can reach shot 0 only through a leak in the masks
    model, x, t, batch = multi_shot_input(n_layers=1)
    with torch.no_grad():
        base = model(x, t, batch)
        changed_ref = dataclasses.replace(batch, ref_latents=batch.ref_latents.clone())
        changed_ref.ref_latents[0, 1] += 5.0  # sample 0's reference of shot 2
        out_ref = model(x, t, changed_ref)
        changed_text = dataclasses.replace(batch, text_embeds=batch.text_embeds.clone())
        changed_text.text_embeds[:, 5:7] += 5.0  # shot 2's caption tokens
        out_text = model(x, t, changed_text)
    torch.testing.assert_close(
        _shot_frames(out_ref, [0, 1, 2])[0], _shot_frames(base, [0, 1, 2])[0]
    )
    assert not torch.allclose(out_ref[0, :, 3:], base[0, :, 3:], atol=1e-4)
    torch.testing.assert_close(out_text[:, :, :3], base[:, :, :3])
    assert not torch.allclose(out_text[:, :, 3:], base[:, :, 3:], atol=1e-4)

    # with two blocks the information does travel through shot 2's video tokens
    model2, x, t, batch = multi_shot_input(n_layers=2)
    with torch.no_grad():
        base2 = model2(x, t, batch)
        changed_text = dataclasses.replace(batch, text_embeds=batch.text_embeds.clone())
        changed_text.text_embeds[:, 5:7] += 5.0
        assert not torch.allclose(model2(x, t, changed_text)[:, :, :3], base2[:, :, :3], atol=1e-5)


def test_permuting_references_with_their_shots_leaves_the_video_unchanged() -> None:
    model, x, t, batch = multi_shot_input()
    order = [1, 0, 2]
    permuted = dataclasses.replace(
        batch,
        ref_latents=batch.ref_latents[:, order],
        ref_shots=batch.ref_shots[:, order],
        ref_boxes=batch.ref_boxes[:, order],
        ref_latent_frames=batch.ref_latent_frames[:, order],
    )
    with torch.no_grad():
        base, out = model(x, t, batch), model(x, t, permuted)
    torch.testing.assert_close(out, base, rtol=1e-5, atol=1e-5)
    # a reference moved to another shot (same slot order) is a different input
    moved = dataclasses.replace(batch, ref_shots=torch.tensor([[1, 2, -1], [2, -1, -1]]))
    moved.ref_latent_frames = torch.tensor([[2, 3, 0], [4, 0, 0]])
    with torch.no_grad():
        assert not torch.allclose(model(x, t, moved)[0], base[0], atol=1e-4)


def test_padded_references_change_nothing() -> None:
    model, x, t, batch = multi_shot_input()
    no_refs = dataclasses.replace(
        batch,
        ref_latents=batch.ref_latents[:, :0],
        ref_shots=batch.ref_shots[:, :0],
        ref_boxes=batch.ref_boxes[:, :0],
        ref_latent_frames=batch.ref_latent_frames[:, :0],
    )
    sample1_only_real = dataclasses.replace(
        batch, ref_shots=torch.tensor([[0, 2, -1], [-1, -1, -1]])
    )
    with torch.no_grad():
        padded = model(x, t, sample1_only_real)  # sample 1's slots are all padding
        plain = model(x, t, no_refs)
    torch.testing.assert_close(padded[1], plain[1], rtol=1e-5, atol=1e-6)


def test_narrative_phi_changes_a_multi_shot_output_but_not_a_single_shot_one() -> None:
    model_a, x, t, batch = multi_shot_input(phi=0.5)
    model_b = MultiShotDiT(model_a.config, RopeConfig(phi=0.0))
    model_b.load_state_dict(model_a.state_dict())
    with torch.no_grad():
        assert not torch.allclose(model_a(x, t, batch), model_b(x, t, batch), atol=1e-4)
        one_shot = dataclasses.replace(
            batch,
            shot_index=torch.zeros_like(batch.shot_index),
            text_segments=batch.text_segments.clamp(max=1),
            ref_shots=batch.ref_shots.clamp(max=0),
            ref_latent_frames=torch.zeros_like(batch.ref_latent_frames),
        )
        torch.testing.assert_close(model_a(x, t, one_shot), model_b(x, t, one_shot))


def test_forward_flops_count_every_matmul() -> None:
    model, x, t, batch = multi_shot_input()
    # FlopCounterMode does not count the fused CPU SDPA kernel; the math backend runs the
    # same attention as bmm calls, which it counts
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(x, t, batch)
    n_video = 5 * 3 * 4
    n_refs = 2 * (2 * 2)  # slots 0 and 1 hold a real reference somewhere in the batch
    expected = forward_flops(model.config, n_video, 8, n_refs, batch=2)
    assert counter.get_total_flops() == expected == model.flops_for_batch(batch)


def test_bfloat16_forward_and_backward_are_finite() -> None:
    model, x, t, batch = multi_shot_input()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the trainer's mixed precision
        reference = model(x, t, batch)
    assert torch.isfinite(reference).all()
    with torch.no_grad():
        torch.testing.assert_close(reference.float(), model(x, t, batch), rtol=0.1, atol=0.05)
    model = model.to(torch.bfloat16)
    batch = batch.to("cpu", torch.bfloat16)
    out = model(x.to(torch.bfloat16), t.to(torch.bfloat16), batch)
    assert out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_plain_batches_reach_sdpa_without_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    """One shot, one caption, no references: SDPA gets attn_mask=None (flash-eligible)."""
    seen: list[bool] = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append(kwargs.get("attn_mask") is not None)
        return real_sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model, x, t, batch = multi_shot_input()
    with torch.no_grad():
        model(x, t, plain_input(2, 5, 8)[2])  # 2 layers x (self, cross)
        assert seen == [False] * 4
        seen.clear()
        model(x, t, batch)  # shots, per-shot captions, references: both masked
        assert seen == [True] * 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_autocast_matches_cpu_and_plain_batches_run_on_flash() -> None:
    model, x, t, batch = multi_shot_input()
    with torch.no_grad():
        expected = model(x, t, batch)
        gpu = model.cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            got = gpu(x.cuda(), t.cuda(), batch.to("cuda"))
            plain = plain_input(2, 5, 8)[2].to("cuda")
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # raises if a mask reached SDPA
                gpu(x.cuda(), t.cuda(), plain)
    torch.testing.assert_close(got.float().cpu(), expected, rtol=0.1, atol=0.05)


def test_additive_mask_is_zero_where_allowed_and_stride_aligned() -> None:
    mask = torch.tensor([[True, False, True], [False, True, True]])[None, None]  # (1, 1, 2, 3)
    bias = additive_mask(mask, torch.bfloat16)
    assert bias is not None and bias.dtype == torch.bfloat16 and bias.shape == mask.shape
    assert torch.equal(bias == 0, mask) and torch.isneginf(bias[~mask]).all()
    assert bias.stride(-2) % 16 == 0  # SDPA's memory-efficient kernel needs no padded copy
    assert additive_mask(None, torch.float32) is None


def test_bad_batches_are_named() -> None:
    model, x, t, batch = multi_shot_input()
    with pytest.raises(ValueError, match="text_embeds"):
        model(x, t, dataclasses.replace(batch, text_embeds=batch.text_embeds[..., :8]))
    with pytest.raises(ValueError, match="not in the shot it serves"):
        model(
            x, t, dataclasses.replace(batch, ref_latent_frames=torch.tensor([[3, 3, 0], [4, 0, 0]]))
        )
    with pytest.raises(ValueError, match="t must be"):
        model(x, t[:1], batch)
    with pytest.raises(ValueError, match="ref_boxes"):
        model(x, t, dataclasses.replace(batch, ref_boxes=batch.ref_boxes.flip(-1)))
