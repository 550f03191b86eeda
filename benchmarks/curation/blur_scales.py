"""Does another working scale tell a blurred shot from a soft picture? The blur measure on the
curation sets' keyframes at several scales.

    .venv/bin/python benchmarks/curation/blur_scales.py /tmp/cur /tmp/cur-s5 ...   # ~6 s a set

Each shot's keyframes (``keyframes.film_keyframes``: the subject stage's three, cropped to the
shot's TRUE active picture) are measured by ``sharpness.focus`` with the working picture at
240 (the default), 180 and 120 lines; a shot's value is its best keyframe's, made relative to
the median of its film's judged shots (contrast >= 5, not a card; films with >= 3 of them), as
``judge_blur`` does. Prints per scale the highest relative sharpness of a truly blurred shot,
the lowest of the others (which a threshold must keep apart) and the absolute values at 240.
(None does; the edge width does: ``edge_width.py``.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from muss_builder.curation import sharpness as measure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyframes import film_keyframes

SCALES = {240: 427 * 240, 180: 320 * 180, 120: 213 * 120}


def film_rows(folder: Path, doc: dict) -> list[dict]:
    _, _, frames = film_keyframes(folder, doc, 3, 1280)
    best: dict[int, dict[int, float]] = {}
    contrast: dict[int, list[float]] = {}
    for kf in frames:
        for lines, pixels in SCALES.items():
            measured = measure.focus(kf.image, pixels=pixels)
            value, grey_std = measured.sharpness, measured.contrast
            shot = best.setdefault(kf.shot, {})
            shot[lines] = max(shot.get(lines, 0.0), value)
            if lines == 240:
                contrast.setdefault(kf.shot, []).append(grey_std)
    rows = []
    for s in doc["shots"]:
        judged = statistics.median(contrast.get(s["index"], [0.0])) >= measure.MIN_CONTRAST
        rows.append(
            {
                "name": f"{folder.name}/{doc['film']}#{s['index']} ({s.get('source')})",
                "blurred": "blurry" in s["flags"],
                "judged": judged and "credits" not in s["flags"],
                **{lines: best.get(s["index"], {}).get(lines, 0.0) for lines in SCALES},
            }
        )
    judged = [r for r in rows if r["judged"]]
    for lines in SCALES:
        median = statistics.median(r[lines] for r in judged) if len(judged) >= 3 else None
        for r in rows:
            r[f"rel{lines}"] = r[lines] / median if median else None
    return [r for r in rows if r["judged"] and r["rel240"] is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    args = parser.parse_args()
    rows = []
    for folder in args.sets:
        for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith("_")):
            rows += film_rows(folder, json.loads(path.read_text()))
    blurred = [r for r in rows if r["blurred"]]
    others = [r for r in rows if not r["blurred"]]
    print(f"{len(blurred)} blurred and {len(others)} other judged shots")
    print("| working lines | blurred: highest relative | others: lowest relative | lowest |")
    print("|---:|---:|---:|---|")
    for lines in SCALES:
        key = f"rel{lines}"
        low = sorted(others, key=lambda r: r[key])[:3]
        names = "; ".join(f"{r['name']} {r[key]:.2f}" for r in low)
        top = max(r[key] for r in blurred)
        print(f"| {lines} | {top:.2f} | {low[0][key]:.2f} | {names} |")
    top = max(r[240] for r in blurred)
    low = min(others, key=lambda r: r[240])
    print(f"\nabsolute at 240 lines: blurred <= {top:.3f}; others >= {low[240]:.3f}", low["name"])


if __name__ == "__main__":
    main()
