"""Does the text screen see a subtitle whatever the crop? Sizing by height against long side.

    .venv/bin/python benchmarks/curation/screen_crops.py /tmp/cur-edge /tmp/cur-s1 /tmp/cur-s2

For every keyframe of every subtitle shot of the curation sets (``make_set.py`` folders; the
keyframes the subject stage picks, three per shot), the picture is cut at its TRUE crop with
the bottom or top edge moved by -2..+2 px (a detected crop is often a pixel or two off), and
run through the detector's screen pass (``TextDetector._probability`` at the screen side
``detect`` uses). Printed per sizing rule: keyframes whose screen map passes the screen
threshold at every offset, and the lowest map maximum seen. ``long side``: the picture scaled
by its long side (before ``text.sized_side``); ``16:9 height``: as a build runs it now.
A subtitle keyframe may truly show no subtitle (a cue that starts late); those fail both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyframes import read_frames

from muss_builder.curation import text as text_module
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import keyframe_frames

OFFSETS = (-2, -1, 0, 1, 2)


def crops(frame: np.ndarray, box: list[int]) -> list[np.ndarray]:
    """The picture at ``box`` with its bottom edge (negative offsets) or top edge moved."""
    x0, y0, x1, y1 = box
    out = []
    for d in OFFSETS:
        top, bottom = (y0, y1 + d) if d <= 0 else (y0 + d, y1)
        out.append(np.ascontiguousarray(frame[top:bottom, x0:x1]))
    return out


def screen_max(detector: text_module.TextDetector, image: np.ndarray) -> float:
    side = detector.screen_side(*image.shape[:2])
    assert side is not None, "the default detector screens every keyframe"
    return float(detector._probability(image, side).max())


def subtitle_keyframes(folder: Path) -> list[tuple[str, int, list[np.ndarray]]]:
    found = []
    for path in sorted(folder.glob("cur_*.json")):
        doc = json.loads(path.read_text())
        subs = [s for s in doc["shots"] if "text_overlay" in s["flags"]]
        if not subs:
            continue
        shots = [Shot(s["index"], s["start_frame"], s["end_frame"], 0, 0, "cut") for s in subs]
        chosen = keyframe_frames(shots, 3)
        crop_of = {f: s["crop"] for s in subs for f in chosen[s["index"]]}
        frames = read_frames(folder / doc["film"], doc["width"], doc["height"], set(crop_of))
        for index, frame in frames:
            found.append((f"{doc['film']}#{index}", index, crops(frame, crop_of[index])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    detector = text_module.text_detector()
    threshold = detector.screen_threshold
    height_rule = text_module.sized_side
    print("| set | keyframes | sizing | passes at every offset | lowest map maximum |")
    print("|---|---:|---|---:|---:|")
    for folder in args.folders:
        keyframes = subtitle_keyframes(folder)
        for name, rule in (("long side", lambda h, w: max(h, w)), ("16:9 height", height_rule)):
            text_module.sized_side = rule  # _probability and detect look it up at call time
            maxima = [[screen_max(detector, im) for im in images] for _, _, images in keyframes]
            passing = sum(min(m) > threshold for m in maxima)
            lowest = min(min(m) for m in maxima)
            print(f"| {folder.name} | {len(keyframes)} | {name} | {passing} | {lowest:.2f} |")
        text_module.sized_side = height_rule


if __name__ == "__main__":
    main()
