"""NVDEC against the CPU decoder on one film: frames/s, and whether the pixels are the same.

    # a 1080p H.264 film with grain and motion (20 s, 480 frames), then the comparison
    ffmpeg -f lavfi -i testsrc2=size=1920x1080:rate=24:duration=20 \
        -vf "noise=alls=12:allf=t,hue=H=t/2" -c:v libx264 -crf 20 -pix_fmt yuv420p film.mp4
    .venv/bin/python benchmarks/nvdec_decode.py film.mp4 --runs 3

Decodes through PyAV (its wheel's FFmpeg has the ``cuda`` hwaccel and the cuvid decoders),
so it answers two questions on a GPU node without an ffmpeg binary there: does the node
expose NVDEC to FFmpeg (``libnvcuvid``, the driver's video capability), and how fast is it
against the CPU decoder on every core. Timed passes decode every frame and bring it to
system memory, as the pipeline's ``-hwaccel cuda`` decode does (no
``-hwaccel_output_format cuda``). A last pass of each compares every frame's Y, U and V
planes: H.264 decoding is exact by the standard, so NVDEC must give the CPU's samples
(docs/gpu-media.md relies on it). Prints a Markdown table; median of ``--runs``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

import av
from av.codec.hwaccel import HWAccel


def _open(path: Path, hw: bool) -> av.container.InputContainer:
    if hw:  # no fallback: a node without NVDEC must fail here, not decode on the CPU quietly
        accel = HWAccel(device_type="cuda", allow_software_fallback=False)
        container = av.open(str(path), hwaccel=accel)
    else:
        container = av.open(str(path))
    container.streams.video[0].thread_type = "AUTO"  # the CPU decoder on every core
    return container


def decode_seconds(path: Path, hw: bool) -> tuple[int, float, str]:
    """Frames, seconds and the decoded pixel format of one full pass."""
    start = time.perf_counter()
    n, fmt = 0, ""
    with _open(path, hw) as container:
        for frame in container.decode(video=0):
            n += 1
            fmt = frame.format.name
    return n, time.perf_counter() - start, fmt


def frame_digests(path: Path, hw: bool) -> list[str]:
    """sha1 of every frame's planar 4:2:0 samples (NV12 from the GPU is re-laid out, exactly)."""
    out = []
    with _open(path, hw) as container:
        for frame in container.decode(video=0):
            out.append(hashlib.sha1(frame.to_ndarray(format="yuv420p").tobytes()).hexdigest())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("film", type=Path)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    stream = av.open(str(args.film)).streams.video[0]
    print(
        f"{args.film.name}: {stream.codec_context.name} {stream.width}x{stream.height} "
        f"{stream.codec_context.pix_fmt}, {stream.frames} frames; median of {args.runs}"
    )
    print("| decoder | frames | seconds (median) | min..max | frames/s | pixel format out |")
    print("|---|---:|---:|---|---:|---|")
    for label, hw in (("CPU (h264, all cores)", False), ("NVDEC (hwaccel cuda)", True)):
        decode_seconds(args.film, hw)  # warm-up: device context, decoder start
        passes = [decode_seconds(args.film, hw) for _ in range(args.runs)]
        times = [s for _, s, _ in passes]
        n, med = passes[0][0], statistics.median(times)
        print(
            f"| {label} | {n} | {med:.2f} | {min(times):.2f}..{max(times):.2f} | "
            f"{n / med:,.0f} | {passes[0][2]} |"
        )
    cpu, gpu = frame_digests(args.film, False), frame_digests(args.film, True)
    same = sum(a == b for a, b in zip(cpu, gpu, strict=False))
    print(f"frames with equal Y/U/V samples: {same} of {len(cpu)} (NVDEC gave {len(gpu)})")


if __name__ == "__main__":
    main()
