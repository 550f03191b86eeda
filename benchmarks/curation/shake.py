"""Calibrate the ``shaky`` filter: the shake measure of shots that shake and of shots that do
not, and what the measure costs, for tile grids side by side.

    .venv/bin/python benchmarks/curation/shake.py /tmp/cur --demo

Each film runs through ``analyse_film`` (the shot detector and the picture observers on one
analysis decode, as a build runs them) once per ``--grids`` value. Truth: a curation set's
films (``make_set.py`` folders; ``cur_handheld`` holds the shaking shots) name their shaky
shots, each detected shot judged by the true shot at its middle; ``--demo`` adds the demo
footage, whose shots are all taken as steady (no shot of it shakes: a music video's close-ups,
street and surveillance cameras, an animation). Prints per grid: shots measured, the least
shake of a shaking shot, the three largest of the steady ones, and the tracker's cost per
analysis frame.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from muss_builder.config import load_pipeline
from muss_builder.curation.picture import analyse_film
from muss_builder.curation.picture_config import PictureConfig, ShakyConfig
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.probe import probe_film


def truth_of(film: Path) -> list[dict] | None:
    doc = film.with_suffix(".json")
    return json.loads(doc.read_text())["shots"] if doc.is_file() else None


def measure(films: list[Path], cfg: PictureConfig) -> dict:
    pipeline = load_pipeline("default")
    shaky, steady, unmeasured, seconds, frames = [], [], 0, 0.0, 0
    for film in films:
        detection, report = analyse_film(
            film, probe_film(film), pipeline.shots, pipeline.analysis, cfg
        )
        seconds += report.seconds["shake"]
        frames += detection.n_frames
        truth = truth_of(film)
        for k, (quality, shot) in enumerate(zip(report.shot_quality, detection.shots, strict=True)):
            value = quality.get("shake")
            if value is None:
                unmeasured += 1
                continue
            mid = (shot.start_frame + shot.end_frame) // 2
            true = next((t for t in truth or [] if t["start_frame"] <= mid < t["end_frame"]), {})
            side = shaky if "shaky" in true.get("flags", []) else steady
            side.append((value, f"{film.name}#{k}", "shaky" in report.shot_flags[k]))
    return {"shaky": sorted(shaky), "steady": sorted(steady, reverse=True),
            "unmeasured": unmeasured, "ms_per_frame": 1000 * seconds / max(1, frames)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path, help="curation set folders")
    parser.add_argument("--demo", action="store_true", help="add the demo footage (steady)")
    parser.add_argument("--grids", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args()
    films = [f for folder in args.sets for f in sorted(folder.glob("cur_*.mp4"))]
    films += list(demo_films()) if args.demo else []
    print(
        "| tiles | measured shots | shaky: least | flagged | steady: largest three | "
        "steady flagged | ms per analysis frame |"
    )
    print("|---|---:|---:|---:|---|---:|---:|")
    for n in args.grids:
        shaky_cfg = ShakyConfig(tiles=n, min_tiles=n * n // 2 + 1)
        got = measure(films, PictureConfig(shaky=shaky_cfg))
        least = f"{got['shaky'][0][0]:.4f}" if got["shaky"] else "-"
        top = ", ".join(f"{v:.4f} ({name})" for v, name, _ in got["steady"][:3])
        print(
            f"| {n} x {n} | {len(got['shaky']) + len(got['steady'])} | {least} | "
            f"{sum(f for *_, f in got['shaky'])} of {len(got['shaky'])} | {top} | "
            f"{sum(f for *_, f in got['steady'])} of {len(got['steady'])} | "
            f"{got['ms_per_frame']:.3f} |"
        )


if __name__ == "__main__":
    main()
