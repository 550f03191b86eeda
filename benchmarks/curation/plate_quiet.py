"""How quiet a logo's plate is next to the picture around it: the numbers behind
``watermark.plate_quiet``.

    .venv/bin/python benchmarks/curation/plate_quiet.py /tmp/cur-s7 /tmp/cur-edge   # ~10 s a set

For each curation set's ``cur_watermark.mp4`` (``make_set.py``: the logo is a dark plate with
white letters at 80 % opacity, its true box in the film's JSON), the analysis frames go through
the picture observer as in a build, and the watermark statistics give each pixel's temporal
standard deviation over the film. Printed as shares of the picture's median (the unit of
``plate_quiet``): inside the plate (two analysis pixels in from the true box's edges) and in a
3-pixel band around it (above, below and to the left).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from muss_builder.curation.picture import ObserverFactory, PictureConfig
from muss_builder.media.decode import FrameReader

SIZE = (256, 144)  # the analysis frame of the default pipeline


def temporal_std(film: Path) -> np.ndarray:
    observer = ObserverFactory(*SIZE, PictureConfig())(0, None)
    for frame in FrameReader(film, SIZE):
        observer.process_frame(frame.index, frame.image)
    return observer.marks.temporal_std()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    args = parser.parse_args()
    print("| set | picture median std | plate: median / max share | around: 5th pct / median |")
    print("|---|---:|---|---|")
    for folder in args.sets:
        doc = json.loads((folder / "cur_watermark.json").read_text())
        std = temporal_std(folder / doc["film"])
        median = float(np.median(std))
        sx, sy = SIZE[0] / doc["width"], SIZE[1] / doc["height"]
        box = doc["watermark"]["box"]
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(box, (sx, sy, sx, sy), strict=True))
        inside = std[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] / median
        bands = (
            std[y0 - 4 : y0 - 1, x0:x1],
            std[y1 + 1 : y1 + 4, x0:x1],
            std[y0:y1, x0 - 4 : x0 - 1],
        )
        around = np.concatenate([b.ravel() for b in bands]) / median
        print(
            f"| {folder.name} | {median:.1f} | {np.median(inside):.3f} / {inside.max():.3f} | "
            f"{np.quantile(around, 0.05):.3f} / {np.median(around):.3f} |"
        )


if __name__ == "__main__":
    main()
