"""What the keyframe pass's decode costs, by how many chosen frames one ffmpeg decode takes.

    .venv/bin/python benchmarks/keyframe_decode.py [FILM ...] --per-decode 48 100 400 --runs 5

For each film (default: the demo footage's music video, 126 shots of 1.7 s at 160x90) the shots
are found with the default pipeline and the frames chosen as a default build chooses them:
``subjects.keyframes_per_shot`` keyframes, the captioner's ``motion_frames_per_shot`` and the
duplicate filter's ``frames_per_shot`` per shot. ``read_keyframes`` then decodes them with
each ``--per-decode`` bound in turn, run after run (alternating, so machine noise hits all
alike); it prints the median wall time of each and checks that every bound gives the same
frames, byte for byte (a sha256 over the pixels).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

from muss_builder.config import load_pipeline
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.probe import probe_film
from muss_builder.shots.segment import detect_shots
from muss_builder.subjects.keyframes import keyframe_frames, read_keyframes


def chosen_frames(film: Path) -> tuple:
    """(probe, frame pts, shot -> frames) as a default build's keyframe pass asks for them."""
    config = load_pipeline("default")
    probe = probe_film(str(film))
    detection = detect_shots(str(film), probe, config.shots, config.analysis)
    per_shot = (
        config.subjects.keyframes_per_shot,
        config.captions.motion_frames_per_shot,
        config.filters.duplicates.frames_per_shot,
    )
    wanted: dict[int, set[int]] = {}
    for k in per_shot:
        for shot, frames in keyframe_frames(detection.shots, k).items():
            wanted.setdefault(shot, set()).update(frames)
    return probe, detection.frame_pts, {s: sorted(f) for s, f in wanted.items()}


def timed_pass(film: Path, probe, frame_pts, wanted: dict, per_decode: int) -> tuple[float, str]:
    digest = hashlib.sha256()
    started = time.perf_counter()
    for keyframe in read_keyframes(str(film), probe, frame_pts, wanted, max_per_decode=per_decode):
        digest.update(keyframe.image.tobytes())
    return time.perf_counter() - started, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("films", nargs="*", type=Path)
    parser.add_argument("--per-decode", nargs="+", type=int, default=[48, 100, 400])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    films = args.films or [f for f in demo_films() if f.name == "test.mp4"]
    print("| film | frames chosen | shots | per decode | s (median) | min..max | pixels sha256 |")
    print("|---|---:|---:|---:|---:|---|---|")
    for film in films:
        probe, frame_pts, wanted = chosen_frames(film)
        seconds: dict[int, list[float]] = {n: [] for n in args.per_decode}
        digests: dict[int, set[str]] = {n: set() for n in args.per_decode}
        for _ in range(args.runs):
            for n in args.per_decode:
                wall, digest = timed_pass(film, probe, frame_pts, wanted, n)
                seconds[n].append(wall)
                digests[n].add(digest)
        assert len(set().union(*digests.values())) == 1, f"{film.name}: the frames differ"
        n_frames = sum(map(len, wanted.values()))
        for n in args.per_decode:
            s = seconds[n]
            print(
                f"| {film.name} | {n_frames} | {len(wanted)} | {n} | "
                f"{statistics.median(s):.2f} | {min(s):.2f}..{max(s):.2f} | "
                f"{next(iter(digests[n]))[:12]} |"
            )


if __name__ == "__main__":
    main()
