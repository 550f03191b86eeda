"""What Ray's worker prestart costs a build on a small machine: the same build with the raylet
prestarting a worker per CPU when the driver connects (Ray's default) and without (workers
start when a task or an actor needs one), alternating run by run.

    .venv/bin/python benchmarks/ray_prestart.py --runs 4 [--config CONFIG] [FILM ...]

Default films: the demo footage; default config: the default pipeline. Each build's wall time
and the CPU seconds of every process (``cpu_account.measure``: Ray's daemons and workers, the
model actors, ffmpeg, the driver) are printed per run, then the medians and the median of each
run's own ratio (its two builds ran back to back). The setting is the raylet's
``RAY_prestart_worker_first_driver``, set in the build's environment; a cluster started here
reads it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_account import measure

from muss_builder.media.demo_footage import demo_films

VARIANTS = {
    "prestart (Ray's default)": {"RAY_prestart_worker_first_driver": "1"},
    "no prestart": {"RAY_prestart_worker_first_driver": "0"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("films", nargs="*")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--config", default="default")
    args = parser.parse_args()
    films = args.films or [str(p) for p in demo_films()]
    got: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for run in range(args.runs):
        for name in names[run % 2 :] + names[: run % 2]:  # alternate which goes first
            m = measure(films, args.config, VARIANTS[name])
            workers = sum(n for kind, n in m["counts"].items() if kind.startswith("ray"))
            got[name].append(m)
            print(
                f"run {run + 1} {name}: wall {m['wall']:.1f} s, CPU {m['cpu']:.1f} s, "
                f"{workers} Ray worker and daemon processes",
                flush=True,
            )
    print(f"\n| variant | wall s (median of {args.runs}) | CPU s of all processes (median) |")
    print("|---|---:|---:|")
    for name, runs in got.items():
        wall = statistics.median(m["wall"] for m in runs)
        cpu = statistics.median(m["cpu"] for m in runs)
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    base, other = (got[n] for n in names)
    for key in ("wall", "cpu"):
        ratios = [b[key] / a[key] for a, b in zip(base, other, strict=True)]
        each = ", ".join(f"{r:.3f}" for r in ratios)
        median = statistics.median(ratios)
        print(f"- {key}: {names[1]} / {names[0]} per run {each}; median {median:.3f}")


if __name__ == "__main__":
    main()
