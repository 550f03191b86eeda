"""TransNetV2 throughput: frames/s of ``TransNetRunner.predict_all`` on one device.

    # on a GPU node (the figure docs/benchmarks.md owes): batch sizes side by side
    .venv/bin/python benchmarks/transnet_throughput.py --device cuda --frames 20000 \
        --batch-windows 8 32 128
    # the CPU figure beside it (fewer frames: ~77 frames/s on 2 cores)
    .venv/bin/python benchmarks/transnet_throughput.py --device cpu --frames 1000 --runs 1

It times the network as the shot stage calls it with ``shots.transnetv2.device``: every frame
of a film at the net's 48x27 input, in 100-frame windows on a 50-frame grid, ``batch_windows``
windows per forward pass (the config's ``batch_windows``), probabilities copied back to the
host. The frames are random uint8 (decode is not part of the figure: the shot stage decodes
them once for all its detectors). One untimed pass loads the weights and warms the kernels;
each size then runs ``--runs`` times and the median is printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from muss_builder.shots.transnet import TransNetRunner, load_transnet


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--frames", type=int, default=20000, help="frames per timed pass")
    p.add_argument("--batch-windows", type=int, nargs="+", default=[8, 32])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    frames = np.random.default_rng(0).integers(0, 256, (args.frames, 27, 48, 3), dtype=np.uint8)
    load_transnet(args.device)  # the weights load outside the timing
    name = args.device
    if args.device == "cuda":
        import torch

        name = torch.cuda.get_device_name()
    print(f"TransNetV2 on {name}, {args.frames} frames of 48x27, median of {args.runs}")
    print("| batch_windows | seconds (median) | min..max | frames/s |")
    print("|---:|---:|---|---:|")
    for batch in args.batch_windows:
        runner = TransNetRunner(args.device, batch_windows=batch)
        runner.predict_all(frames[: 100 * batch])  # warm-up: kernels for this batch size
        times = []
        for _ in range(args.runs):
            _sync(args.device)
            start = time.perf_counter()
            out = runner.predict_all(frames)
            _sync(args.device)
            times.append(time.perf_counter() - start)
        assert len(out.single) == args.frames and np.isfinite(out.single).all()
        med = statistics.median(times)
        print(
            f"| {batch} | {med:.2f} | {min(times):.2f}..{max(times):.2f} | "
            f"{args.frames / med:,.0f} |"
        )


if __name__ == "__main__":
    main()
