"""Wall time of `muss-builder build` on the demo footage and on a 10-minute 1080p synthetic film.

Runs the real CLI (local Ray, default pipeline) in fresh output folders, alternating the cases
so that machine noise hits both alike, and prints medians with the per-stage split taken from
each run's stats.json.

    .venv/bin/python benchmarks/build_wall_time.py --runs 3 --work /tmp/muss-bench
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from muss_builder.media.demo_footage import demo_films
from muss_builder.runtime.film_job import TIMING_BUCKETS
from muss_builder.testing.synthetic_films import make_film


def long_film(work: Path, minutes: float = 10.0, fps: int = 24) -> Path:
    """A 1080p film of `minutes` made of 2-8 s shots (seeded), generated once and reused."""
    path = work / f"synthetic_{minutes:g}min_1080p.mp4"
    if path.is_file():
        return path
    rng = random.Random(7)
    frames, total = [], int(minutes * 60 * fps)
    while sum(frames) < total:
        frames.append(min(rng.randint(2 * fps, 8 * fps), total - sum(frames)))
    frames = [f for f in frames if f > 0]
    make_film(path, frames, fps=fps, width=1920, height=1080, crf=23, preset="veryfast")
    return path


def run_case(films: list[Path], out: Path, config: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cli = Path(sys.executable).with_name("muss-builder")
    started = time.perf_counter()
    subprocess.run(
        [str(cli), "build", *map(str, films), "--out", str(out), "--config", config],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    stats = json.loads((out / "stats.json").read_text())
    return {
        "wall": wall,
        "film_seconds": stats["film_seconds_processed"],
        "samples": stats["samples_in_index"],
        "n_shots": stats["shots"],
        **{s: stats["stage_seconds"].get(s, 0.0) for s in TIMING_BUCKETS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-bench"))
    parser.add_argument("--config", default="default")
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cases = {
        "demo footage": demo_films(),
        f"synthetic {args.minutes:g} min 1080p": [long_film(args.work, args.minutes)],
    }
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for run in range(args.runs):
        for name, films in cases.items():
            results[name].append(run_case(films, args.work / f"out-{run}", args.config))
            print(f"run {run + 1} {name}: {results[name][-1]['wall']:.1f}s", file=sys.stderr)
    print(
        f"| case | films | film s | shots | samples | wall s (median of {args.runs}) | "
        "min..max | " + " | ".join(f"{s} s" for s in TIMING_BUCKETS) + " | film-s per wall-s |"
    )
    print("|" + "---|" * (8 + len(TIMING_BUCKETS)))
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        walls = [r["wall"] for r in runs]
        print(
            f"| {name} | {len(cases[name])} | {med['film_seconds']:.0f} | {med['n_shots']:.0f} | "
            f"{med['samples']:.0f} | {med['wall']:.1f} | {min(walls):.1f}..{max(walls):.1f} | "
            + " | ".join(f"{med[s]:.1f}" for s in TIMING_BUCKETS)
            + f" | {med['film_seconds'] / med['wall']:.2f} |"
        )


if __name__ == "__main__":
    main()
