"""One long film on a 2-CPU local Ray: split detection ranges and clip units vs one piece.

The same film is built with the default config (detection in ranges of
``shots.range_seconds``, clips in units of ``runtime.clip_unit_seconds``) and with both limits
raised above the film's length, alternating, in fresh folders. Prints median wall times and
checks that both give byte-identical shards.

    .venv/bin/python benchmarks/long_film.py --minutes 30 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
from pathlib import Path

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.runtime.build import build
from muss_builder.testing.synthetic_films import make_film


def long_film(work: Path, minutes: float) -> Path:
    path = work / f"long_{minutes:g}min_360p.mp4"
    if not path.is_file():
        rng = random.Random(11)
        frames: list[int] = []
        while sum(frames) < minutes * 60 * 24:
            frames.append(rng.randint(48, 192))
        make_film(path, frames, fps=24, width=640, height=360)
    return path


def unsplit(config: PipelineConfig) -> PipelineConfig:
    return config.model_copy(
        update={
            "shots": config.shots.model_copy(update={"range_seconds": 1e7}),
            "runtime": config.runtime.model_copy(update={"clip_unit_seconds": 1e7}),
        }
    )


def shard_digest(out: Path) -> str:
    digest = hashlib.sha256()
    for shard in sorted((out / "shards").glob("*.tar")):
        digest.update(shard.name.encode() + shard.read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/muss-bench-long")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    film = long_film(work, args.minutes)
    split = load_pipeline("default")
    cases = {"split": split, "one piece": unsplit(split)}
    walls: dict[str, list[float]] = {name: [] for name in cases}
    stages: dict[str, dict] = {}
    digests = set()
    for r in range(args.runs):
        for name in list(cases) if r % 2 == 0 else list(cases)[::-1]:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            summary = build([str(film)], out, cases[name], executor="ray", num_cpus=2)
            assert summary.count("ok") == 1, summary.results
            walls[name].append(summary.stats["wall_seconds"])
            stages[name] = summary.stats["stage_seconds"]
            digests.add(shard_digest(out))
            print(f"run {r} {name}: {walls[name][-1]:.1f} s", flush=True)
    print(f"\n{args.minutes:g}-minute 640x360 film, default pipeline, local Ray with 2 CPUs")
    print("| case | median wall | shot detection (wall) | clip encoding (sum over units) |")
    print("|---|---|---|---|")
    for name, values in walls.items():
        s = stages[name]
        print(
            f"| {name} | {statistics.median(values):.1f} s | {s['shots']:.1f} | {s['clips']:.1f} |"
        )
    ratio = statistics.median(walls["one piece"]) / statistics.median(walls["split"])
    print(f"\nsplit is {ratio:.2f}x faster; identical shards: {len(digests) == 1}")


if __name__ == "__main__":
    main()
