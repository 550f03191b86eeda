"""Scene boundary F1 on synthetic films with known scenes, next to a fade-only baseline.

    .venv/bin/python benchmarks/scenes.py --films 4 --work /tmp/muss-scenes [--json OUT]

Each film (``muss_builder.testing.scene_film``, seeds 0..N-1) has 11 places of 3-6 shots
(an establishing shot half the time, then an A-B-A-B exchange), half of the changes of place
a fade through black and half a plain cut. The pipeline's own parts run on it as a build
does: the shot detector (default config), the keyframes (3 per shot), the colour histograms
(``scenes.looks``) and the segmenter (``scenes.segment``, default ``ScenesConfig``). A true
break is found when the detected shot holding the first frame of the true scene's first shot
opens a scene. Baseline: a break at every detected gradual transition (fade or dissolve).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from muss_builder.config import PipelineConfig, ScenesConfig
from muss_builder.media.probe import probe_film
from muss_builder.scenes.looks import ShotLookCollector
from muss_builder.scenes.segment import GRADUAL, break_f1, segment_scenes
from muss_builder.shots.segment import detect_shots
from muss_builder.subjects.keyframes import keyframe_frames, read_keyframes
from muss_builder.testing.scene_film import SceneFilm, make_scene_film


def detected_breaks(film: SceneFilm, cfg: ScenesConfig) -> tuple[list[int], list[int], dict]:
    """(breaks found, baseline breaks, details) as TRUE shot indices of the film."""
    config = PipelineConfig()
    probe = probe_film(film.path)
    detection = detect_shots(film.path, probe, config.shots, config.analysis)
    shots = detection.shots
    collector = ShotLookCollector(shots)
    chosen = keyframe_frames(shots, 3)
    for kf in read_keyframes(str(film.path), probe, detection.frame_pts, chosen, 640):
        collector.add(kf, True)
    scenes, boundaries = segment_scenes(shots, collector.finish(), None, cfg)
    starts = [sum(film.shot_frames[:i]) for i in range(len(film.shot_frames))]

    def true_shot(detected_start: int) -> int:
        # the true shot whose span holds the detected shot's start (a fade moves it a little)
        best = min(range(len(starts)), key=lambda i: abs(starts[i] - detected_start))
        return best

    found = [true_shot(shots[s.first_shot].start_frame) for s in scenes[1:]]
    baseline = [true_shot(s.start_frame) for s in shots[1:] if s.transition_in in GRADUAL]
    truth = set(film.breaks)
    links = {True: [], False: []}
    for b in boundaries:
        shot = next(s for s in shots if s.index == b.shot)
        links[true_shot(shot.start_frame) in truth].append(round(b.link, 3))
    details = {
        "detected_shots": len(shots),
        "true_shots": len(film.shot_frames),
        "max_link_at_true_breaks": max(links[True], default=None),
        "min_link_elsewhere": min(links[False], default=None),
    }
    return found, baseline, details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-scenes"))
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--narrow-palette",
        action="store_true",
        help="every place's hue within 30 degrees (warm interiors): places that look alike",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cfg = ScenesConfig()
    rows = []
    for seed in range(args.films):
        hues = (5.0, 20.0) if args.narrow_palette else (0.0, 180.0)
        name = f"scenes_{'narrow_' if args.narrow_palette else ''}{seed}.mp4"
        film = make_scene_film(args.work / name, seed=seed, hues=hues)
        found, baseline, details = detected_breaks(film, cfg)
        ours, base = break_f1(found, film.breaks), break_f1(baseline, film.breaks)
        rows.append({"seed": seed, "ours": ours, "baseline": base, **details})
        print(
            f"film {seed}: {details['true_shots']} shots ({details['detected_shots']} detected), "
            f"{len(film.breaks)} breaks; segmenter P {ours['precision']:.2f} R "
            f"{ours['recall']:.2f} F1 {ours['f1']:.2f}; fade-only F1 {base['f1']:.2f}; best link "
            f"across a true break {details['max_link_at_true_breaks']}, weakest link inside a "
            f"scene {details['min_link_elsewhere']}"
        )
    for name in ("ours", "baseline"):
        f1 = [r[name]["f1"] for r in rows]
        p = [r[name]["precision"] for r in rows]
        r_ = [r[name]["recall"] for r in rows]
        print(
            f"{name}: F1 mean {statistics.mean(f1):.3f} (min {min(f1):.3f}), precision "
            f"{statistics.mean(p):.3f}, recall {statistics.mean(r_):.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
