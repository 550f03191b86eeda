"""What the text screen could give up: the detector's cost per frame by size and batch, and
the keyframe filters' scores when the screen runs at a smaller side.

    .venv/bin/python benchmarks/curation/text_screen.py /tmp/cur /tmp/cur-tiny \\
        --sides 320 192 160

Part 1 times PP-OCRv4 DB (``curation.text``: the graph in the rapidocr-onnxruntime wheel, one
intra-op thread, as a build runs it) on random input of 160x96, 320x192 and 640x352 in
batches of 1, 3 and 6 (median of 7 runs after a warm-up, per frame). Part 2 scores each
curation set (``make_set.py`` folders) with ``keyframes.py``'s scorer, the screen at each
``--sides`` value: text_overlay, credits and blurry precision/recall, clean shots flagged and
the text cost per keyframe.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# the keyframe benchmark beside this file provides the scorer
sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyframes import run

from muss_builder.curation.keyframe_quality import KeyframeQualityConfig
from muss_builder.curation.text import detector_model_path

SIZES = ((96, 160), (192, 320), (352, 640))
BATCHES = (1, 3, 6)


def detector_cost() -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(detector_model_path()), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    print("| input | batch | ms per frame (median of 7) |\n|---|---:|---:|")
    for h, w in SIZES:
        for n in BATCHES:
            x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
            session.run(None, {name: x})  # warm-up
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                session.run(None, {name: x})
                times.append(time.perf_counter() - t0)
            print(f"| {w}x{h} | {n} | {1000 * statistics.median(times) / n:.1f} |")


def screen_scores(folders: list[Path], sides: list[int]) -> None:
    print("\n| set | screen side | text_overlay P / R | credits P / R | blurry P / R | "
          "clean flagged | text ms per keyframe (median) |")  # fmt: skip
    print("|---|---:|---|---|---|---:|---:|")
    for folder in folders:
        for side in sides:
            base = KeyframeQualityConfig()
            text = base.text.model_copy(update={"screen_max_side": side})
            result = run(folder, 3, 1280, base.model_copy(update={"text": text}))
            flags = result["scores"]["flags"]
            pr = [
                f"{flags[f]['precision'] or 0:.2f} / {flags[f]['recall'] or 0:.2f}"
                for f in ("text_overlay", "credits", "blurry")
            ]
            flagged = len(result["scores"]["clean_flagged"])
            cost = statistics.median(result["text_ms"])
            print(f"| {folder.name} | {side} | {' | '.join(pr)} | {flagged} | {cost:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="curation sets (make_set.py)")
    parser.add_argument("--sides", nargs="+", type=int, default=[320, 192, 160])
    args = parser.parse_args()
    detector_cost()
    if args.folders:
        screen_scores(args.folders, args.sides)


if __name__ == "__main__":
    main()
