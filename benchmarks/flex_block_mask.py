"""What building the reference mask's BlockMask costs per forward: eager against compiled.

    # on a GPU node, at the Wan2.1-1.3B shape of benchmarks/train_step.py --refs 4
    # (5 shots x 7,800 video tokens, 4 references of 64 tokens: N = 39,256)
    .venv/bin/python benchmarks/flex_block_mask.py --device cuda
    # a smoke run on a CPU (small N: the eager build evaluates every (q, kv) cell)
    .venv/bin/python benchmarks/flex_block_mask.py --device cpu --video-tokens 2000 --runs 2

``flex.self_attention_block_mask`` builds one ``BlockMask`` per forward with eager
``create_block_mask``, which evaluates the mask_mod on the whole (B, N, N) grid (1.5e9 cells
at N = 39,256) before reducing it to 128 x 128 tiles. ``torch.compile(create_block_mask)``
fuses that into a kernel that never materialises the grid (torch 2.13 deprecates the older
``_compile=True`` flag in favour of it). This script times both on the same inputs (median of
``--runs`` after one untimed call each, which compiles the second), checks that they give the
same tiles, and prints the peak memory of each on CUDA: the figure that decides whether the
model should build its mask compiled (not yet measured on a GPU).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask

from muss_builder.train import flex


def shot_layout(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """(video_shots (1, N_v), ref_shots (1, R)): shots in order, references spread over them."""
    per_shot = args.video_tokens // args.shots
    video_shots = torch.arange(args.shots).repeat_interleave(per_shot)[None]
    ref_shots = torch.tensor([[i % args.shots for i in range(args.refs)]])
    return video_shots.to(args.device), ref_shots.to(args.device)


_compiled_create = torch.compile(create_block_mask)


def build(args: argparse.Namespace, compiled: bool) -> BlockMask:
    """Eager: the model's own ``flex.self_attention_block_mask``; compiled: the same mask_mod
    through ``torch.compile(create_block_mask)``."""
    video_shots, ref_shots = shot_layout(args)
    if not compiled:
        mask = flex.self_attention_block_mask(video_shots, ref_shots, args.tokens_per_ref)
        assert mask is not None, "this layout hides nothing: there is no mask to build"
        return mask
    token_shot, token_ref = flex.token_indices(video_shots, ref_shots, args.tokens_per_ref)
    n = token_shot.shape[1]
    mask_mod = flex.self_attention_mask_mod(token_shot, token_ref)
    return _compiled_create(mask_mod, 1, None, n, n, device=args.device)


def same_tiles(a: BlockMask, b: BlockMask) -> bool:
    names = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices")
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not torch.equal(x, y)):
            return False
    return True


def timed(args: argparse.Namespace, compiled: bool) -> tuple[float, float | None, BlockMask]:
    """(median ms, peak GiB on CUDA or None, the mask)."""
    cuda = args.device == "cuda"
    mask = build(args, compiled)  # untimed: compiles the compiled variant
    times = []
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.runs):
        t0 = time.perf_counter()
        mask = build(args, compiled)
        if cuda:
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - t0))
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return statistics.median(times), peak, mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--video-tokens", type=int, default=39000)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--refs", type=int, default=4)
    p.add_argument("--tokens-per-ref", type=int, default=64)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    eager_ms, eager_peak, eager = timed(args, compiled=False)
    compiled_ms, compiled_peak, compiled = timed(args, compiled=True)
    n = eager.shape[-1]
    print(f"device {args.device}, N = {n} tokens, {args.refs} references, median of {args.runs}")
    print("| create_block_mask | ms per forward | peak GiB |")
    print("|---|---:|---:|")
    for name, ms, peak in (
        ("eager", eager_ms, eager_peak),
        ("compiled", compiled_ms, compiled_peak),
    ):
        print(f"| {name} | {ms:.1f} | {'-' if peak is None else f'{peak:.2f}'} |")
    print(f"same tiles: {same_tiles(eager, compiled)}")


if __name__ == "__main__":
    main()
