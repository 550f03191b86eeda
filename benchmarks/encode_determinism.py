"""Clip encoding: speed and repeatability of libx264 threading settings, side by side.

Each candidate encodes the same clip with the pipeline's own ``encode_clip`` (the source is
decoded and scaled by ffmpeg, frames go through a pipe into the encoder, as in a build), in
rounds that alternate the candidates so machine noise hits all alike. ``--busy N`` starts N
CPU burners for the whole run (a loaded machine is when the old setting changed its output).
Prints the median wall time per clip, the encode speed in clip frames per second, and how
many different files each candidate wrote: a deterministic setting writes exactly one.

    .venv/bin/python benchmarks/encode_determinism.py --runs 5 --busy 2 --work /tmp/muss-enc
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import statistics
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from muss_builder.config import ClipsConfig
from muss_builder.media.clips import encode_clip, plan_clip
from muss_builder.media.commands import H264Options, clip_options
from muss_builder.media.probe import probe_film
from muss_builder.media.tools import binary, run

BASE = ClipsConfig()  # the default pipeline's fps, size, crf and preset
# The setting before issue 14: ffmpeg's -threads 2, i.e. two frame threads plus x264's
# asynchronous lookahead thread.
LEGACY = H264Options(preset=BASE.preset, crf=BASE.crf, threads=2, bit_exact=True)
CANDIDATES: dict[str, H264Options] = {
    "old: -threads 2": LEGACY,
    "frame threads 1": clip_options(BASE.model_copy(update={"encoder_threads": 1})),
    "frame threads 2, sync-lookahead 0": clip_options(
        BASE.model_copy(update={"encoder_threads": 2, "encoder_threading": "frame"})
    ),
    "sliced threads 2": clip_options(
        BASE.model_copy(update={"encoder_threads": 2, "encoder_threading": "slice"})
    ),
    "frame threads 4, sync-lookahead 0": clip_options(
        BASE.model_copy(update={"encoder_threads": 4, "encoder_threading": "frame"})
    ),
    "sliced threads 4": clip_options(
        BASE.model_copy(update={"encoder_threads": 4, "encoder_threading": "slice"})
    ),
}


def source_film(work: Path, seconds: int) -> Path:
    """A 1280x720 H.264 film with motion and grain everywhere, so the encoder works hard."""
    path = work / f"source_{seconds}s_720p.mp4"
    if not path.is_file():
        graph = (
            f"testsrc2=s=1280x720:r=24,noise=alls=12:allf=t,hue=H=t/2:s=1.2,trim=duration={seconds}"
        )
        run(
            [
                *(binary("ffmpeg"), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", graph),
                *H264Options(preset="veryfast", crf=18).codec_args(),
                str(path),
            ],
            what="benchmark source film",
            timeout=600,
        )
    return path


def _burn(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--busy", type=int, default=0, help="CPU burner processes")
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-enc"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    film = source_film(args.work, args.seconds)
    probe = probe_film(film)
    n = round(args.seconds * 24)
    pts = np.arange(n) / 24.0
    plan = plan_clip(pts, n / 24.0, 0, n, Fraction(BASE.fps or 24).limit_denominator(1001))
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(args.busy)]
    for proc in burners:
        proc.start()
    times: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    digests: dict[str, set[str]] = {name: set() for name in CANDIDATES}
    try:
        for _ in range(args.runs):
            for name, codec in CANDIDATES.items():
                out = args.work / "clip.mp4"
                started = time.perf_counter()
                encode_clip(film, probe, pts, plan, BASE, out, options=codec)
                times[name].append(time.perf_counter() - started)
                digests[name].add(hashlib.sha256(out.read_bytes()).hexdigest()[:12])
    finally:
        stop.set()
        for proc in burners:
            proc.join()
    print(
        f"{args.seconds} s 1280x720 source -> {plan.n_frames} frames at 480p, "
        f"preset {BASE.preset}, crf {BASE.crf}; {args.runs} runs each, {args.busy} CPU burners"
    )
    print(f"| setting | median s per clip | clip fps | distinct files in {args.runs} runs |")
    print("|---|---|---|---|")
    for name in CANDIDATES:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.2f} | {plan.n_frames / median:.0f} | {len(digests[name])} |")


if __name__ == "__main__":
    main()
