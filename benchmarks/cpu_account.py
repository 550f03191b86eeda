"""Where a build's CPU goes: every process's CPU seconds and the machine's busy cores over time.

    .venv/bin/python benchmarks/cpu_account.py --config CONFIG [--pairs-with CONFIG2] [FILM ...]

Builds the films (default: the demo footage) with ``muss-builder build --config CONFIG`` into
a fresh folder while polling ``/proc`` every 0.3 s: each process's user + system seconds
(grouped by what it is: a model actor, a task worker, ffmpeg, the driver, Ray's own daemons;
a process that ends between two polls loses at most its last 0.3 s), the worker processes
Ray started, and the share of the machine's cores that were busy in each 2.5 s of the build
(``/proc/stat``). ``--pairs-with`` builds a second config right after, the same way, so that
two configs are compared on the same minute of the machine. Linux only.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from muss_builder.media.demo_footage import demo_films

POLL_SECONDS = 0.3
TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_table() -> dict[int, tuple[str, float]]:
    """pid -> (command line, CPU seconds so far)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        title = cmdline.strip() or stat.split("(", 1)[1].split(")", 1)[0]
        table[int(entry.name)] = (title, (int(fields[11]) + int(fields[12])) / TICK)
    return table


def kind_of(titles: set[str]) -> str:
    """What a process was, from every title it showed (Ray renames its workers as they work)."""
    ray = sorted(t.split()[0] for t in titles if t.startswith("ray::"))
    if any(t.startswith(("ray::StageActor", "ray::DuplicateRegistry")) for t in ray):
        return next(t for t in ray if t != "ray::IDLE" and "." not in t)
    if "ray::_call_stage" in ray:
        return "ray task worker"
    if ray:
        return "ray worker, no task" if set(ray) <= {"ray::IDLE"} else ray[0]
    title = next(iter(titles))
    if "ffmpeg" in title.split()[0]:
        return "ffmpeg"
    if "muss-builder" in title:
        return "muss-builder driver"
    return Path(title.split()[0]).name


def measure(films: list[str], config: str, env: dict[str, str] | None = None) -> dict:
    """Build ``films`` with ``config`` (``env`` added to the build's environment) while polling
    ``/proc``: the wall seconds, every process's CPU seconds grouped by kind (``groups``, with
    ``counts`` of processes) and the busy cores at each poll."""
    before = process_table()
    seen: dict[int, tuple[set[str], float]] = {}
    busy: list[float] = []
    done = threading.Event()

    def poll() -> None:
        last = machine_busy()
        while not done.is_set():
            for pid, (title, cpu) in process_table().items():
                titles, _ = seen.get(pid, (set(), 0.0))
                titles.add(title)
                start = before[pid][1] if pid in before else 0.0  # its CPU before the build
                seen[pid] = (titles, cpu - start)
            now = machine_busy()
            busy.append((now[0] - last[0]) / max(1, now[1] - last[1]) * os.cpu_count())
            last = now
            time.sleep(POLL_SECONDS)

    watcher = threading.Thread(target=poll, daemon=True)
    cli = Path(sys.executable).with_name("muss-builder")
    with tempfile.TemporaryDirectory() as tmp:
        watcher.start()
        t0 = time.perf_counter()
        subprocess.run(
            [str(cli), "build", *films, "--out", str(Path(tmp) / "out"), "--config", config],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        wall = time.perf_counter() - t0
        done.set()
        watcher.join()
    me = os.getpid()
    groups: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for pid, (titles, cpu) in seen.items():
        if pid != me and cpu > 0.05:
            groups[kind_of(titles)] += cpu
            counts[kind_of(titles)] += 1
    return {"wall": wall, "cpu": sum(groups.values()), "groups": groups, "counts": counts,
            "busy": busy}  # fmt: skip


def account(films: list[str], config: str) -> None:
    got = measure(films, config)
    groups, counts, busy = got["groups"], got["counts"], got["busy"]
    print(f"\n{config}: wall {got['wall']:.1f} s, CPU {got['cpu']:.1f} s of all processes")
    print("| process | processes | CPU s |\n|---|---:|---:|")
    for kind, cpu in groups.most_common():
        print(f"| {kind} | {counts[kind]} | {cpu:.1f} |")
    per = round(2.5 / POLL_SECONDS)
    spans = [busy[i : i + per] for i in range(0, len(busy), per)]
    print("busy cores per 2.5 s: " + " ".join(f"{sum(s) / len(s):.1f}" for s in spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("films", nargs="*")
    parser.add_argument("--config", required=True)
    parser.add_argument("--pairs-with", default=None)
    args = parser.parse_args()
    films = args.films or [str(p) for p in demo_films()]
    for config in filter(None, (args.config, args.pairs_with)):
        account(films, config)


if __name__ == "__main__":
    main()
