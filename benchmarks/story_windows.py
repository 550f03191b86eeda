"""Story windows on synthetic films with known scenes, next to the old greedy planner.

    .venv/bin/python benchmarks/story_windows.py --films 4 --work /tmp/muss-story \
        [--max-shots 6] [--json OUT]

Each film (``muss_builder.testing.scene_film``, seeds 0..N-1, the same films as
``benchmarks/scenes.py``) has 11 places of 3-6 shots (an establishing shot half the time, then
an A-B-A-B exchange), half of the changes of place a fade through black. The build's own
parts run on it: the shot detector, the keyframes (3 per shot), the colour histograms, then
``samples.scene_plan.plan_film`` with the default pipeline (scenes on, ``cross_scene`` off,
6 shots at most a window). Baseline: the planner before scenes (greedy: from the film's
start, each window as long as the limits allow, no scenes). Per planner: montage windows,
windows holding a change of place (truth), shots held of those a window may hold, windows
whose first shot is a natural start by the truth (a place's first shot, or the exchange's
first shot after an establishing shot), and shots per window.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from muss_builder.config import PipelineConfig
from muss_builder.media.probe import probe_film
from muss_builder.samples.scene_plan import plan_film
from muss_builder.samples.windows import Window, window_fits
from muss_builder.scenes.looks import ShotLookCollector
from muss_builder.shots.segment import Shot, detect_shots
from muss_builder.subjects.keyframes import keyframe_frames, read_keyframes
from muss_builder.testing.scene_film import SceneFilm, make_scene_film


def greedy_windows(shots: list[Shot], config: PipelineConfig) -> list[Window]:
    """The baseline: the planner as it was before scenes (greedy, longest first, no scenes)."""
    cfg, windows, i = config.samples, [], 0
    while i < len(shots):
        best = None
        for last in range(i, min(len(shots), i + cfg.max_shots)):
            if shots[last].duration_seconds > cfg.max_shot_seconds:
                break
            if window_fits(shots, i, last, cfg):
                best = last
        if best is None:
            i += 1
            continue
        windows.append(Window(i, best))
        i = best + 1
    return windows


def film_windows(film: SceneFilm, config: PipelineConfig) -> dict:
    probe = probe_film(film.path)
    detection = detect_shots(film.path, probe, config.shots, config.analysis)
    shots = detection.shots
    collector = ShotLookCollector(shots)
    for kf in read_keyframes(
        str(film.path), probe, detection.frame_pts, keyframe_frames(shots, 3), 640
    ):
        collector.add(kf, True)
    looks = collector.finish()
    starts = [sum(film.shot_frames[:i]) for i in range(len(film.shot_frames))]

    def true_shot(frame: int) -> int:
        return min(range(len(starts)), key=lambda i: abs(starts[i] - frame))

    truth = [true_shot(s.start_frame) for s in shots]  # detected position -> true shot
    natural = set()
    for t, scene in enumerate(film.scene_of_shot):
        first = t == 0 or film.scene_of_shot[t - 1] != scene
        after_e = t > 0 and film.setup_of_shot[t - 1] == "E" and film.scene_of_shot[t - 1] == scene
        if first or after_e:
            natural.add(t)
    plan = plan_film(shots, config, {}, None, looks, None, None)
    out = {}
    for name, windows in (("ours", plan.windows), ("greedy", greedy_windows(shots, config))):
        crossing = sum(
            len({film.scene_of_shot[truth[p]] for p in w.positions}) > 1 for w in windows
        )
        usable = sum(s.duration_seconds <= config.samples.max_shot_seconds for s in shots)
        out[name] = {
            "windows": len(windows),
            "crossing": crossing,
            "held_share": len({p for w in windows for p in w.positions}) / usable,
            "natural_starts": sum(truth[w.first] in natural for w in windows) / len(windows),
            "shots_per_window": statistics.mean(w.n_shots for w in windows),
        }
    out["scenes_found"] = len(plan.scenes)
    out["true_scenes"] = len(set(film.scene_of_shot))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-story"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--max-shots", type=int, default=6, help="samples.max_shots")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = PipelineConfig()
    config = base.model_copy(
        update={"samples": base.samples.model_copy(update={"max_shots": args.max_shots})}
    )
    rows = []
    for seed in range(args.films):
        film = make_scene_film(args.work / f"scenes_{seed}.mp4", seed=seed)
        row = {"seed": seed, **film_windows(film, config)}
        rows.append(row)
        print(
            f"film {seed}: {row['true_scenes']} places, {row['scenes_found']} scenes found; "
            + "; ".join(
                f"{name}: {r['windows']} windows, {r['crossing']} cross a place, "
                f"{r['held_share']:.2f} of shots held, {r['natural_starts']:.2f} start "
                f"naturally, {r['shots_per_window']:.2f} shots each"
                for name, r in ((n, row[n]) for n in ("ours", "greedy"))
            )
        )
    for name in ("ours", "greedy"):
        total = sum(r[name]["windows"] for r in rows)
        crossing = sum(r[name]["crossing"] for r in rows)
        held = statistics.mean(r[name]["held_share"] for r in rows)
        natural = statistics.mean(r[name]["natural_starts"] for r in rows)
        print(
            f"{name}: {total} windows, {crossing} crossing a change of place, "
            f"{held:.3f} of shots held, {natural:.3f} of windows start naturally"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
