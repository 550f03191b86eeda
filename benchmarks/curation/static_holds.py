"""Calibrate the ``static`` filter's holds: frozen shots against moving ones, clean and grainy.

    .venv/bin/python benchmarks/curation/static_holds.py /tmp/cur-edge /tmp/cur-g8 \
        --levels 1 2 --seconds 0.3 0.35 --pans /tmp/static-pans --demo

Each film of a curation set (``make_set.py`` folders, ``--grain`` for grainy ones) is decoded
once at the analysis size with the pipeline's scaling and fed to the picture observer, as a
build does; each TRUE shot (black holds left out) is judged on its cells inside the true crop.
For every (``frozen_levels``, ``min_frozen_seconds``) pair it prints the static shots found
and missed, the moving shots flagged, the largest frozen share of a moving shot and the least
of a static one, beside the rule before holds (a frame frozen when no cell's mean absolute
change from the frame before is over 0.5 grey levels).

``--pans DIR`` makes (once) 3-second pans across three photos at 0.1-1 px a frame of an
854x480 film, clean and with grain (ffmpeg ``noise`` alls 8), and prints each one's frozen
share. ``--demo`` prints the demo footage's shots that either rule flags (its shot detector's
shots: no truth there; none of its shots is a freeze).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from muss_builder.config import load_pipeline
from muss_builder.curation.frame_quality import DIFF_SCALE, shot_quality
from muss_builder.curation.picture import ObserverFactory, PictureConfig, analyse_film
from muss_builder.media.decode import FrameReader
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.probe import probe_film
from muss_builder.shots.detector import analysis_size

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from baselines import load_set  # noqa: E402
from make_set import OPENCV_DATA  # noqa: E402

OLD_FROZEN_DIFF = 0.5  # the one-frame rule before holds
PHOTOS = ("baboon.jpg", "fruits.jpg", "home.jpg")
SPEEDS = (0.1, 0.25, 0.5, 1.0)  # px a frame of the 854-px film


def film_cells(path: Path) -> tuple[object, np.ndarray, tuple[int, int], float]:
    """(the merged observer, its cells, the analysis size, fps) of one film."""
    analysis = load_pipeline("default").analysis
    probe = probe_film(path)
    w, h = analysis_size(probe, analysis)
    observer = ObserverFactory(w, h, PictureConfig())(0, None)
    for frame in FrameReader(path, (w, h), scale_flags=analysis.scale_flags):
        observer.process_frame(frame.index, frame.image)
    merged, cells, _ = type(observer).merged([observer])
    return merged, cells, (w, h), probe.fps


def configs(pairs: list[tuple[float, float]]) -> list[PictureConfig]:
    """The picture config of each (``frozen_levels``, ``min_frozen_seconds``) pair."""
    return [
        PictureConfig(static={"frozen_levels": levels, "min_frozen_seconds": seconds})
        for levels, seconds in pairs
    ]


def old_share(cells: np.ndarray, mask: np.ndarray) -> float:
    diff = cells[:, 2][:, mask] / DIFF_SCALE
    moving = diff[1:] if len(diff) > 1 else diff
    return float((moving.max(axis=1) <= OLD_FROZEN_DIFF).mean())


def frozen_share(cells: np.ndarray, mask: np.ndarray, cfg: PictureConfig, fps: float) -> float:
    """The shot's ``frozen_share`` as a build measures it."""
    return shot_quality(cells, mask, cfg, fps)["frozen_share"]


def set_shots(folder: Path) -> Iterable[tuple[bool, np.ndarray, np.ndarray, float]]:
    """(truly static, the shot's cells (frames, 3, cells_y, cells_x), the cells inside its
    true crop, fps) per true shot."""
    for doc in load_set(folder):
        path = folder / doc["film"]
        merged, cells, (w, h), fps = film_cells(path)
        sw, sh = doc["width"], doc["height"]
        for shot in doc["shots"]:
            if "black" in shot["flags"]:
                continue
            x0, y0, x1, y1 = shot["crop"]
            box = [x0 * w // sw, y0 * h // sh, -(-x1 * w // sw), -(-y1 * h // sh)]
            mask = merged.cells.cell_mask(box, None)
            shot_cells = cells[shot["start_frame"] : shot["end_frame"]]
            yield "static" in shot["flags"], shot_cells, mask, fps


def score_sets(folders: Sequence[Path], pairs: list[tuple[float, float]]) -> None:
    rules = ["before holds"] + [f"levels {lv:g}, {sec:g} s" for lv, sec in pairs]
    print("| set | " + " | ".join(rules) + " |")
    print("|---|" + "---|" * len(rules))
    print("(each cell: static found / missed, moving flagged, most frozen moving, least "
          "frozen static)")  # fmt: skip
    cfgs = configs(pairs)
    for folder in folders:
        shares: list[list[float]] = [[] for _ in rules]
        truth: list[bool] = []
        for static, cells, mask, fps in set_shots(folder):
            truth.append(static)
            shares[0].append(old_share(cells, mask))
            for k, cfg in enumerate(cfgs, start=1):
                shares[k].append(frozen_share(cells, mask, cfg, fps))
        cols = []
        for share in shares:
            flagged = [s >= 0.5 for s in share]
            found = sum(f and t for f, t in zip(flagged, truth, strict=True))
            wrong = sum(f and not t for f, t in zip(flagged, truth, strict=True))
            moving = max((s for s, t in zip(share, truth, strict=True) if not t), default=0.0)
            still = min((s for s, t in zip(share, truth, strict=True) if t), default=1.0)
            cols.append(f"{found} / {sum(truth) - found}, {wrong}, {moving:.2f}, {still:.2f}")
        print(f"| {folder.name} | " + " | ".join(cols) + " |")


def make_pans(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for photo in PHOTOS:
        for speed in SPEEDS:
            for grain in (0, 8):
                path = out / f"{Path(photo).stem}_{speed:g}px_grain{grain}.mp4"
                if not path.is_file():  # pan a 4x picture by 4x the speed: quarter-px steps
                    vf = (f"scale=4272:2400,crop=3416:1920:x='n*{speed * 4:g}':y=200,"
                          "scale=854:480:flags=area,"
                          f"noise=alls={grain}:allf=t,format=yuv420p")  # fmt: skip
                    subprocess.run(
                        ["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i",
                         str(OPENCV_DATA / photo), "-vf", vf, "-frames:v", "72", "-r", "24",
                         "-c:v", "libx264", "-crf", "18", str(path)],
                        check=True,
                    )  # fmt: skip
                made.append(path)
    return made


def score_pans(films: list[Path], pairs: list[tuple[float, float]]) -> None:
    print("\n| pan | before holds | " + " | ".join(f"{lv:g}, {s:g} s" for lv, s in pairs) + " |")
    print("|---|---|" + "---|" * len(pairs))
    cfgs = configs(pairs)
    for film in films:
        _, cells, _, fps = film_cells(film)
        mask = np.ones(cells.shape[2:], bool)  # every cell: a full-frame pan
        cols = [f"{old_share(cells, mask):.2f}"]
        cols += [f"{frozen_share(cells, mask, cfg, fps):.2f}" for cfg in cfgs]
        print(f"| {film.stem} | " + " | ".join(cols) + " |")


def demo_flags(pairs: list[tuple[float, float]]) -> None:
    pipeline = load_pipeline("default")
    print("\ndemo footage: shots flagged static (film, shot, frames)")
    for (levels, seconds), cfg in zip(pairs, configs(pairs), strict=True):
        flagged, total = [], 0
        for film in demo_films():
            detection, report = analyse_film(
                film, probe_film(film), pipeline.shots, pipeline.analysis, cfg
            )
            total += len(detection.shots)
            for k, shot in enumerate(detection.shots):
                share = report.shot_quality[k]["frozen_share"]
                if share >= cfg.static.min_frozen_share and "black" not in report.shot_flags[k]:
                    flagged.append(f"{film.name}#{k} ({shot.end_frame - shot.start_frame})")
        print(f"- levels {levels:g}, {seconds:g} s: {len(flagged)} of {total}: "
              + (", ".join(flagged) or "none"))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--levels", type=float, nargs="+", default=[2.0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[0.35])
    parser.add_argument("--pans", type=Path, help="make and score slow pans here")
    parser.add_argument("--demo", action="store_true", help="the demo footage's static shots")
    args = parser.parse_args(argv)
    pairs = [(lv, s) for lv in args.levels for s in args.seconds]
    if args.sets:
        score_sets(args.sets, pairs)
    if args.pans:
        score_pans(make_pans(args.pans), pairs)
    if args.demo:
        demo_flags(pairs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
