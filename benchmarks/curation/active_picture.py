"""Score ``muss_builder.curation.active_picture`` on a curation set (issue 16, deliverable 1).

Each film is decoded once at the analysis size, every frame is fed to the detector (with a
``cut`` at each true shot start, as the build's shot detector would give it), the box asked
per true shot range, scaled to source pixels (inward) and scored by IoU against the truth,
next to the cropdetect baseline of ``baselines.py`` scored the same way.

    .venv/bin/python benchmarks/curation/active_picture.py /tmp/cur [--width 256] [--json F]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from muss_builder.curation.active_picture import ActivePictureDetector, scale_box
from muss_builder.media.decode import FrameReader, scaled_size

HERE = Path(__file__).resolve().parent


def _baselines():
    spec = importlib.util.spec_from_file_location("curation_baselines", HERE / "baselines.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def detect_film(
    folder: Path, doc: dict, width: int | None, cuts: bool = True
) -> tuple[list[list[int]], list[bool]]:
    """Source-pixel boxes for the film's true shots, and which shots' own frames decided."""
    sw, sh = doc["width"], doc["height"]
    aw, ah = scaled_size(sw, sh, target_width=width) if width else (sw, sh)
    det = ActivePictureDetector(aw, ah)
    starts = {s["start_frame"] for s in doc["shots"]}
    for frame in FrameReader(folder / doc["film"], (aw, ah)):
        if cuts and frame.index in starts:
            det.cut(frame.index)
        det.process_frame(frame.index, frame.image)
    shots = [(s["start_frame"], s["end_frame"]) for s in doc["shots"]]
    edges = det.shot_edges(shots)
    own = det.shot_evidence(shots)
    boxes = [scale_box(b, (aw, ah), (sw, sh), rounding="nearest") for b in edges]
    return boxes, own


def summarise(rows: list[dict], key: str) -> dict:
    ious = [r[f"{key}_iou"] for r in rows]
    full = [r for r in rows if not r["truth_bars"]]
    return {
        "iou_mean": float(np.mean(ious)),
        "iou_min": float(np.min(ious)),
        "iou_ge_098": sum(v >= 0.98 for v in ious) / len(ious),
        "full_frame_cropped": sum(r[f"{key}_bars"] is not None for r in full),
        "full_frame_shots": len(full),
    }


def run(folder: Path, width: int | None, cuts: bool = True) -> tuple[list[dict], dict]:
    base = _baselines()
    rows: list[dict] = []
    t0 = time.perf_counter()
    for doc in base.load_set(folder):
        w, h = doc["width"], doc["height"]
        ours, own = detect_film(folder, doc, width, cuts)
        crops = base.cropdetect_boxes(folder / doc["film"])
        for shot, box, decided in zip(doc["shots"], ours, own, strict=True):
            a, b = shot["start_frame"], shot["end_frame"]
            cd = base.union(crops[a:b], w, h)
            rows.append(
                {
                    "film": doc["film"],
                    "shot": shot["index"],
                    "truth": shot["crop"],
                    "truth_bars": base.bars_kind(shot["crop"], w, h),
                    "ours": box,
                    "ours_iou": base.iou(box, shot["crop"]),
                    "ours_bars": base.bars_kind(box, w, h),
                    "ours_own_evidence": decided,
                    "cropdetect": cd,
                    "cropdetect_iou": base.iou(cd, shot["crop"]),
                    "cropdetect_bars": base.bars_kind(cd, w, h),
                }
            )
    scores = {
        "ours": summarise(rows, "ours"),
        "cropdetect": summarise(rows, "cropdetect"),
        "inherited": sum(not r["ours_own_evidence"] for r in rows),
        "shots": len(rows),
        "analysis_width": width,
        "cuts": cuts,
        "seconds": time.perf_counter() - t0,
    }
    return rows, scores


def markdown(s: dict) -> str:
    o, c = s["ours"], s["cropdetect"]
    width = s["analysis_width"] or "source"
    lines = [
        f"| measure | active_picture (analysis width {width}) | cropdetect limit=24 |",
        "|---|---:|---:|",
        f"| crop IoU, mean over shots | {o['iou_mean']:.3f} | {c['iou_mean']:.3f} |",
        f"| crop IoU, worst shot | {o['iou_min']:.3f} | {c['iou_min']:.3f} |",
        f"| shots with crop IoU >= 0.98 | {o['iou_ge_098']:.0%} | {c['iou_ge_098']:.0%} |",
        f"| full-frame shots given bars | {o['full_frame_cropped']} of {o['full_frame_shots']} "
        f"| {c['full_frame_cropped']} of {c['full_frame_shots']} |",
        f"| shots whose box came from other shots (no own evidence) | {s['inherited']} of "
        f"{s['shots']} | - |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--width", type=int, default=256, help="analysis width; 0 = source")
    parser.add_argument(
        "--no-cuts", action="store_true", help="do not tell the detector where shots start"
    )
    parser.add_argument("--json", type=Path, help="write per-shot rows and scores here")
    parser.add_argument("--worst", type=int, default=5, help="print the N worst shots")
    args = parser.parse_args(argv)
    rows, scores = run(args.folder, args.width or None, not args.no_cuts)
    print(markdown(scores))
    for r in sorted(rows, key=lambda r: r["ours_iou"])[: args.worst]:
        print(
            f"# {r['film']} shot {r['shot']}: ours {r['ours']} truth {r['truth']} "
            f"IoU {r['ours_iou']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"scores": scores, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
