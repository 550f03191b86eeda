"""Training-step speed of the multi-shot DiT: step time, tokens/s, peak memory, MFU.

    # the GPU target: Wan2.1-1.3B shape (random init), 480x832, 5 shots x 17 frames, bf16
    # (39,000 video tokens; 1.42B fp32 weights, grads, AdamW and EMA take ~28 GB). On an H200:
    # eager without checkpointing runs out of memory (> 137 GiB), --compile fits in 121.5 GiB
    # (45.5 % MFU), --compile --activation-checkpointing in 29.9 GiB (docs/benchmarks.md)
    .venv/bin/python benchmarks/train_step.py --compile
    .venv/bin/python benchmarks/train_step.py --activation-checkpointing --compile
    .venv/bin/python benchmarks/train_step.py --refs 4 --activation-checkpointing --compile
    # references on CUDA take FlexAttention (auto); --attention efficient times the masked SDPA
    .venv/bin/python benchmarks/train_step.py --refs 4 --activation-checkpointing --compile \
        --attention efficient
    # CPU smoke check
    .venv/bin/python benchmarks/train_step.py --preset tiny --height 64 --width 64 \
        --shots 2 --frames-per-shot 5 --precision fp32 --steps 3 --warmup 1

It times the trainer's own step (``loop.train_step``: noise, logit-normal t, caption dropout,
autocast forward, weighted flow loss, backward) plus grad clipping, AdamW and the EMA, on
synthetic latents of the shape the Wan VAE gives for the requested video (16 channels,
stride 8 in space, 4k+1 frames -> k+1 latent frames per shot), so no VAE or data is needed.
Text: a global caption of ``--global-tokens`` plus ``--shot-tokens`` per shot (random
embeddings of the preset's text width); ``--refs`` adds reference images of ``--ref-size``.

MFU = 3 x forward matmul FLOPs (``model.forward_flops``; the activation-checkpointing
recompute is not counted, as MFU conventions do) / step time / the device's dense bf16 peak
(``loop.PEAK_BF16_TFLOPS`` or ``--peak-tflops``). Prints one Markdown table row (with the
header unless ``--no-header``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from muss_builder.train.config import TrainConfig
from muss_builder.train.loop import (
    build_model,
    peak_bf16_tflops,
    setup_distributed,
    train_step,
    wrap_model,
)
from muss_builder.train.optim import EMA, build_optimizer, clip_gradients
from muss_builder.train.types import LatentBatch

HEADER = (
    "| preset | device | video | latents (C,T,H,W) | tokens | batch | precision | act. ckpt "
    "| compile | step s | tokens/s | peak mem GiB | TFLOP/s | MFU |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def synthetic_batch(args: argparse.Namespace, channels: int, text_dim: int) -> LatentBatch:
    """A LatentBatch shaped like the VAE + text encoder output for the requested video."""
    if (args.frames_per_shot - 1) % 4:
        raise SystemExit(f"--frames-per-shot {args.frames_per_shot} is not 4k+1")
    if args.height % 16 or args.width % 16:
        raise SystemExit("--height/--width must be multiples of 16 (VAE stride 8 x patch 2)")
    lat_per_shot = (args.frames_per_shot - 1) // 4 + 1
    b, t = args.batch, lat_per_shot * args.shots
    h, w = args.height // 8, args.width // 8
    gen = torch.Generator().manual_seed(0)
    shot_index = torch.arange(args.shots).repeat_interleave(lat_per_shot).expand(b, t)
    segments = [0] * args.global_tokens
    for s in range(args.shots):
        segments += [s + 1] * args.shot_tokens
    length = len(segments)
    r = args.refs
    rh = rw = args.ref_size // 8
    ref_shots = torch.tensor([i % args.shots for i in range(r)], dtype=torch.long).expand(b, r)
    ref_frames = ref_shots * lat_per_shot + lat_per_shot // 2
    return LatentBatch(
        keys=[f"synthetic{i}" for i in range(b)],
        latents=torch.randn(b, channels, t, h, w, generator=gen),
        shot_index=shot_index.clone(),
        n_shots=torch.full((b,), args.shots, dtype=torch.long),
        text_embeds=torch.randn(b, length, text_dim, generator=gen),
        text_segments=torch.tensor(segments, dtype=torch.long).expand(b, length).clone(),
        ref_latents=torch.randn(b, r, channels, 1, rh, rw, generator=gen),
        ref_shots=ref_shots.clone(),
        ref_boxes=torch.tensor([0.3, 0.2, 0.6, 0.8]).expand(b, r, 4).clone(),
        ref_latent_frames=ref_frames.clone(),
        loss_weight=torch.ones(b, t, h, w),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="wan1.3b")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--frames-per-shot", type=int, default=17)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--global-tokens", type=int, default=128)
    p.add_argument("--shot-tokens", type=int, default=64)
    p.add_argument("--refs", type=int, default=0, help="reference images in the batch")
    p.add_argument("--ref-size", type=int, default=128, help="reference side, pixels")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--activation-checkpointing", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument(
        "--attention",
        default="auto",
        choices=["auto", "flash", "efficient", "cudnn", "math", "flex"],
        help="SDPA backend, or flex (FlexAttention for the reference-masked self-attention); "
        "auto = flex there on CUDA",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile, caches)")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--no-header", action="store_true")
    args = p.parse_args()

    cfg = TrainConfig(
        model={"preset": args.preset},
        precision=args.precision,
        activation_checkpointing=args.activation_checkpointing,
        compile=args.compile,
        attention=args.attention,
        device=args.device,
        parallel="none",
        flow={"caption_dropout": 0.1},
    )
    env = setup_distributed(cfg)
    device = env.device
    raw = build_model(cfg).to(device)  # seeded random init (cfg.seed = 0)
    model_cfg = raw.config
    model = wrap_model(raw, cfg, env)
    optimizer = build_optimizer(raw, cfg, fused=device.type == "cuda")
    batch = synthetic_batch(args, model_cfg.in_channels, model_cfg.text_dim).to(device)
    ema = EMA(raw, 0.999)
    gen = torch.Generator().manual_seed(0)
    times: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        train_step(model, batch, cfg, gen, device)
        clip_gradients(model, 1.0)
        optimizer.step()
        ema.update(i)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        raw.validate_inputs = False
    step_s = statistics.median(times)
    flops = 3 * raw.flops_for_batch(batch)
    _, c, t, h, w = batch.latents.shape
    tokens = args.batch * math.prod(raw.token_grid(batch.latents))
    peak = peak_bf16_tflops(device, args.peak_tflops)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    mfu = f"{flops / step_s / (peak * 1e12):.1%}" if peak else "n/a (no bf16 peak)"
    row = (
        f"| {args.preset} | {name} | {args.height}x{args.width}, {args.shots}x"
        f"{args.frames_per_shot} f | ({c},{t},{h},{w}) | {tokens} | {args.batch} | "
        f"{args.precision} | {args.activation_checkpointing} | {args.compile} | {step_s:.3f} | "
        f"{tokens / step_s:,.0f} | {f'{mem:.1f}' if mem is not None else 'n/a'} | "
        f"{flops / step_s / 1e12:.2f} | {mfu} |"
    )
    if not args.no_header:
        print(HEADER)
    print(row)


if __name__ == "__main__":
    main()
