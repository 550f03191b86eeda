"""Ray at this machine's scale: CPU scaling, Ray's overhead over inline, and memory vs films.

Every run is a fresh process pinned with ``taskset`` to the CPUs it is given (so "1 CPU"
really is one core for the driver, Ray and ffmpeg alike), building into a fresh folder.

    # 1 vs 2 CPUs, and Ray vs --executor inline on the same input (medians of --runs)
    .venv/bin/python benchmarks/ray_scaling.py scaling --films 8 --seconds 60 --runs 3
    # peak driver and worker memory as the film count grows (tiny films, tiny pipeline)
    .venv/bin/python benchmarks/ray_scaling.py memory --counts 10 30 100
    # where Ray's time goes: one film at a time on 1 CPU, the gaps between stage calls
    .venv/bin/python benchmarks/ray_scaling.py timeline --films 3

Memory is sampled every 0.2 s from /proc for the driver and every process under it (Ray's
raylet, workers and actors, and their ffmpeg children): the driver's peak RSS, the largest
single worker's, and the largest sum over all of them at one moment.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from muss_builder.testing.synthetic_films import make_film

CHILD = r"""
import json, os, sys, threading, time
from pathlib import Path
from muss_builder.config import load_pipeline
from muss_builder.runtime.build import build

def rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def children_of():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids

peak = {"driver_kb": 0, "worker_kb": 0, "total_kb": 0}
stop = threading.Event()

def sample():
    me = os.getpid()
    while not stop.is_set():
        kids, todo, tree = children_of(), [me], []
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(kids.get(pid, []))
        sizes = {pid: rss_kb(pid) for pid in tree}
        peak["driver_kb"] = max(peak["driver_kb"], sizes[me])
        others = [v for pid, v in sizes.items() if pid != me]
        peak["worker_kb"] = max([peak["worker_kb"], *others])
        peak["total_kb"] = max(peak["total_kb"], sum(sizes.values()))
        time.sleep(0.2)

threading.Thread(target=sample, daemon=True).start()
films, out, config, executor, cpus = json.loads(sys.argv[1])
summary = build(films, out, load_pipeline(config), executor=executor, num_cpus=cpus)
stop.set()
time.sleep(0.3)
print(json.dumps({"stats": summary.stats, "peak": peak}))
"""


def make_films(work: Path, n: int, seconds: float, width: int, height: int) -> list[str]:
    """``n`` films of 2-6 s shots (seeded per film), generated once and reused."""
    paths = []
    for i in range(n):
        path = work / f"film{i:03d}_{seconds:g}s_{height}p.mp4"
        if not path.is_file():
            rng = random.Random(i)
            frames: list[int] = []
            while sum(frames) < seconds * 24:
                frames.append(rng.randint(48, 144))
            make_film(path, frames, fps=24, width=width, height=height)
        paths.append(str(path))
    return paths


def run(films: list[str], out: Path, config: str, executor: str, cpus: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cores = ",".join(str(c) for c in range(cpus))
    proc = subprocess.run(
        ["taskset", "-c", cores, sys.executable, "-c", CHILD,
         json.dumps([films, str(out), config, executor, cpus])],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    stats = result["stats"]
    assert stats["films"]["failed"] == 0, stats["failures"]
    return {
        "wall": stats["wall_seconds"],
        "film_h_per_h": stats["film_hours_per_wall_hour"],
        "busy": {k: v["busy_share"] for k, v in stats["stages"].items()},
        "peak_mb": {k: round(v / 1024) for k, v in result["peak"].items()},
        "samples": stats["samples_in_index"],
    }


def scaling(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    films = make_films(work, args.films, args.seconds, 1280, 720)
    cases = [("inline", 1), ("ray", 1), ("ray", 2)]
    walls: dict[str, list[float]] = {f"{e} {c} CPU": [] for e, c in cases}
    last: dict[str, dict] = {}
    for r in range(args.runs):
        for executor, cpus in cases if r % 2 == 0 else cases[::-1]:  # alternate the order
            name = f"{executor} {cpus} CPU"
            last[name] = run(films, work / "out", args.config, executor, cpus)
            walls[name].append(last[name]["wall"])
            print(f"run {r} {name}: {last[name]['wall']:.1f} s", flush=True)
    print(f"\n{args.films} films x {args.seconds:g} s 720p, config {args.config}")
    print("| case | median wall | film-h per wall-h | speed-up vs ray 1 CPU | busy shares |")
    print("|---|---|---|---|---|")
    base = statistics.median(walls["ray 1 CPU"])
    footage = args.films * args.seconds
    for name, values in walls.items():
        med = statistics.median(values)
        busy = ", ".join(f"{k} {v:.0%}" for k, v in last[name]["busy"].items())
        print(f"| {name} | {med:.1f} s | {footage / med:.2f} | {base / med:.2f}x | {busy} |")
    inline = statistics.median(walls["inline 1 CPU"])
    print(f"\nRay overhead on 1 CPU: {base / inline:.3f}x the inline wall time")


def memory(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print("| films | wall | driver peak | largest worker | all processes |")
    print("|---|---|---|---|---|")
    for n in args.counts:
        films = make_films(work, n, 6, 320, 180)
        res = run(films, work / "out", args.config, "ray", 2)
        p = res["peak_mb"]
        print(
            f"| {n} | {res['wall']:.1f} s | {p['driver_kb']} MB | {p['worker_kb']} MB "
            f"| {p['total_kb']} MB |",
            flush=True,
        )


TIMELINE_CHILD = r"""
import json, shutil, sys, time
from muss_builder.config import load_pipeline
from muss_builder.runtime import monitor
from muss_builder.runtime.build import build

calls = []
original = monitor.StageMonitor.finished_call
def finished_call(self, stage, started, finished, film_seconds):
    calls.append((stage, started, finished))
    return original(self, stage, started, finished, film_seconds)
monitor.StageMonitor.finished_call = finished_call
films, out = json.loads(sys.argv[1])
config = load_pipeline("default")
config = config.model_copy(
    update={"runtime": config.runtime.model_copy(update={"max_in_flight": 1})}
)
started = time.time()
summary = build(films, out, config, executor="ray", num_cpus=1)
print(json.dumps({"started": started, "ended": time.time(), "calls": calls}))
"""


def timeline(args: argparse.Namespace) -> None:
    """Ray's own costs, one film at a time on one CPU: before the first stage call (local
    Ray start, identification, worker and actor start), between calls, and after the last."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    films = make_films(work, args.films, 60, 1280, 720)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", TIMELINE_CHILD, json.dumps([films, str(out)])],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    calls = doc["calls"]
    gaps = [b[1] - a[2] for a, b in itertools.pairwise(calls)]
    busy = sum(c[2] - c[1] for c in calls)
    wall = doc["ended"] - doc["started"]
    print(f"{args.films} films x 60 s 720p, default pipeline, Ray on 1 CPU, one film at a time")
    print(
        "| wall | in stage calls | before the first call | between calls (median, max) "
        "| after the last call |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {wall:.1f} s | {busy:.1f} s | {calls[0][1] - doc['started']:.2f} s "
        f"| {statistics.median(gaps) * 1000:.0f} ms, {max(gaps) * 1000:.0f} ms "
        f"| {doc['ended'] - calls[-1][2]:.2f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("scaling")
    s.add_argument("--films", type=int, default=8)
    s.add_argument("--seconds", type=float, default=60.0)
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--config", default="default")
    s.add_argument("--work", default="/tmp/muss-bench-ray")
    m = sub.add_parser("memory")
    m.add_argument("--counts", type=int, nargs="+", default=[10, 30, 100])
    m.add_argument("--config", default="tiny", help="a pipeline name or YAML path")
    m.add_argument("--work", default="/tmp/muss-bench-ray-mem")
    t = sub.add_parser("timeline")
    t.add_argument("--films", type=int, default=3)
    t.add_argument("--work", default="/tmp/muss-bench-ray")
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() < 2:
        sys.exit("needs at least 2 CPUs")
    {"scaling": scaling, "memory": memory, "timeline": timeline}[args.mode](args)


if __name__ == "__main__":
    main()
