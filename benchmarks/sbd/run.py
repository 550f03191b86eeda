"""Shot-boundary benchmark, side by side in one run: accuracy on the benchmark set and speed
on one 1080p film.

    .venv/bin/python benchmarks/sbd/run.py --set /tmp/muss-sbd-set --work /tmp/muss-sbd --runs 3

Accuracy: `muss-builder bench sbd` with our default (muss), PySceneDetect's adaptive and
content detectors at their defaults, and TransNetV2 alone, all fed by one decode per film.
Speed: wall time of whole commands on the same 1080p film, alternating, median of --runs:
`scenedetect -i FILM detect-adaptive` (PySceneDetect's CLI, defaults), `muss-builder shots
FILM` (our default pipeline) and `ffmpeg -i FILM -f null -` (a plain decode: the floor).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from build_wall_time import long_film  # noqa: E402

BIN = Path(sys.executable).parent


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=Path("/tmp/muss-sbd-set"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-sbd"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the 1080p film")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.set / "_summary.json").is_file():
        subprocess.run(
            [sys.executable, str(HERE / "make_set.py"), "--out", str(args.set)], check=True
        )
    if not args.skip_accuracy:
        table = args.work / "accuracy.md"
        started = time.perf_counter()
        subprocess.run(
            [
                str(BIN / "muss-builder"),
                "bench",
                "sbd",
                str(args.set),
                "--detector",
                "muss",
                "--detector",
                "adaptive",
                "--detector",
                "content",
                "--detector",
                "transnetv2",
                "--markdown",
                str(table),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"## Accuracy ({time.perf_counter() - started:.0f} s)\n")
        print(table.read_text())
    film = long_film(args.work, args.minutes)
    commands = {
        "scenedetect detect-adaptive": [
            str(BIN / "scenedetect"),
            "-q",
            "-i",
            str(film),
            "detect-adaptive",
        ],
        "muss-builder shots (default)": [str(BIN / "muss-builder"), "shots", str(film)],
        "ffmpeg decode only": ["ffmpeg", "-v", "error", "-i", str(film), "-f", "null", "-"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            walls[name].append(timed(command))
    frames = round(args.minutes * 60 * 24)
    base = statistics.median(walls["scenedetect detect-adaptive"])
    floor = statistics.median(walls["ffmpeg decode only"])
    print(f"\n## Speed: {film.name}, {frames} frames 1920x1080, median of {args.runs}\n")
    print("| command | wall s (median) | min..max | frames/s | vs scenedetect | vs decode |")
    print("|---|---|---|---|---|---|")
    for name, values in walls.items():
        med = statistics.median(values)
        print(
            f"| {name} | {med:.2f} | {min(values):.2f}..{max(values):.2f} | "
            f"{frames / med:.0f} | {med / base:.2f} | {med / floor:.2f} |"
        )


if __name__ == "__main__":
    main()
