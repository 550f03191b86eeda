"""Score the plain curation recipes on the curation set (see make_set.py and README.md).

    python benchmarks/curation/baselines.py DIR [--json OUT.json] [--markdown OUT.md]

The recipes are the ones issue 16 names as what breaks on real films, with their usual
textbook thresholds; they get the true shot boundaries (from the ground truth), so what is
measured is the flag, not shot detection:

- crop: ffmpeg ``cropdetect`` (its default ``limit=24``; ``round=2`` so that the box is not
  snapped to 16 pixels), per frame, the union of the frame boxes over the shot;
- ``blurry``: variance of the Laplacian of the shot's middle frame below 100;
- ``black``: mean luma of the shot below 10 % of full scale (ffmpeg blackdetect's ``pix_th``);
- ``static``: median absolute difference between consecutive frames below 1 grey level;
- ``shaky``: the standard deviation of the frame-to-frame translation of the whole frame
  (phase correlation at 256 px) over 1 % of the width;
- ``duplicate``: a 64-bit pHash of the middle frame (32x32 DCT, 8x8 low frequencies, median)
  within Hamming distance 10 of a shot of an earlier film (in build order);
- ``text_overlay`` and ``credits``: OCR on the middle frame (RapidOCR: PP-OCRv4 detection,
  angle classifier and recognition, its default settings, on the whole frame, bars and logo
  included): ``credits`` when it reads ``OCR_CREDITS_LINES`` text boxes or more, else
  ``text_overlay`` when it reads any (score >= 0.5, RapidOCR's default ``text_score``); the
  rows say "not run" when rapidocr-onnxruntime is not installed;
- ``watermark``: no plain recipe is named for it; the row reports the truth count only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

from muss_builder.media.tools import binary, run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the set's truth flags live in make_set
from make_set import DROP_FLAGS

CROPDETECT_LIMIT = 24  # ffmpeg cropdetect's default black level (of 255)
CROPDETECT_ROUND = 2  # ffmpeg's default is 16 (codec alignment); 2 keeps the detected edges
BAR_MIN_FRACTION = 0.01  # a side trimmed by less than 1 % of the frame is not a bar
LAPLACIAN_VAR_BLURRY = 100.0  # the usual "variance of the Laplacian" cut-off (8-bit grey)
BLACK_MEAN_LUMA = 0.10 * 255  # blackdetect's default pix_th=0.10, applied to the mean
STATIC_MEAN_ABS_DIFF = 1.0  # grey levels between consecutive frames
SHAKE_STD = 0.01  # std of the frame-to-frame translation, share of the width
PHASH_MAX_HAMMING = 10  # of 64 bits: the usual near-duplicate radius for pHash
OCR_PACKAGES = ("rapidocr_onnxruntime", "rapidocr", "paddleocr", "easyocr", "doctr")
OCR_CREDITS_LINES = 3  # a frame that reads three text boxes or more is a card, not a subtitle
FLAGS = (
    "letterbox",
    "pillarbox",
    "windowbox",
    "text_overlay",
    "credits",
    "watermark",
    "black",
    "blurry",
    "static",
    "shaky",
    "duplicate",
)
KEYFRAME_FLAGS = ("text_overlay", "credits", "blurry")
RECIPES = {
    "letterbox": f"cropdetect limit={CROPDETECT_LIMIT}",
    "pillarbox": f"cropdetect limit={CROPDETECT_LIMIT}",
    "windowbox": f"cropdetect limit={CROPDETECT_LIMIT}",
    "text_overlay": "OCR on the middle frame: 1-2 text boxes",
    "credits": f"OCR on the middle frame: >= {OCR_CREDITS_LINES} text boxes",
    "watermark": "(none named)",
    "black": f"mean luma < {BLACK_MEAN_LUMA:.1f}",
    "blurry": f"Laplacian variance < {LAPLACIAN_VAR_BLURRY:g}",
    "static": f"median frame diff < {STATIC_MEAN_ABS_DIFF:g}",
    "shaky": f"std of whole-frame translation > {SHAKE_STD:g} of the width",
    "duplicate": f"pHash Hamming <= {PHASH_MAX_HAMMING}",
}
CROP_LINE = re.compile(rb"x1:(-?\d+) x2:(-?\d+) y1:(-?\d+) y2:(-?\d+)")


def ocr_available() -> str | None:
    """The name of an installed OCR package that ships detector weights, or None."""
    return next((p for p in OCR_PACKAGES if importlib.util.find_spec(p) is not None), None)


def ocr_engine() -> object | None:
    """RapidOCR's full pipeline, loaded from the installed package (never downloaded)."""
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        return None
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def ocr_flags(engine: object | None, gray: np.ndarray) -> set[str]:
    """The plain text recipe on one frame: how many text boxes OCR reads in it."""
    if engine is None:
        return set()
    result, _ = engine(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    n = len(result or [])
    return {"credits"} if n >= OCR_CREDITS_LINES else {"text_overlay"} if n else set()


def decode_gray(path: Path, width: int, height: int) -> np.ndarray:
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path)]
    args += ["-vf", "format=gray", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]
    data = run(args, what=f"decode {path.name}")
    return np.frombuffer(data, np.uint8).reshape(-1, height, width)


def cropdetect_boxes(path: Path) -> list[list[int] | None]:
    """ffmpeg cropdetect per frame (reset every frame): [x0, y0, x1, y1] or None (all dark)."""
    vf = f"cropdetect=limit={CROPDETECT_LIMIT}:round={CROPDETECT_ROUND}:reset=1:skip=0"
    args = [binary("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "info", "-i", str(path)]
    args += ["-vf", vf, "-f", "null", "-"]
    # stderr carries the per-frame lines (media.tools.run returns stdout only)
    proc = subprocess.run(args, capture_output=True, check=True, timeout=600)
    boxes: list[list[int] | None] = []
    for m in CROP_LINE.finditer(proc.stderr):
        x1, x2, y1, y2 = (int(v) for v in m.groups())
        boxes.append([x1, y1, x2 + 1, y2 + 1] if x2 >= x1 and y2 >= y1 else None)
    return boxes


def union(boxes: Sequence[list[int] | None], width: int, height: int) -> list[int]:
    valid = [b for b in boxes if b]
    if not valid:
        return [0, 0, width, height]
    return [
        min(b[0] for b in valid),
        min(b[1] for b in valid),
        max(b[2] for b in valid),
        max(b[3] for b in valid),
    ]


def iou(a: Sequence[int], b: Sequence[int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


def bars_kind(box: Sequence[int], width: int, height: int) -> str | None:
    rows = box[1] > BAR_MIN_FRACTION * height or height - box[3] > BAR_MIN_FRACTION * height
    cols = box[0] > BAR_MIN_FRACTION * width or width - box[2] > BAR_MIN_FRACTION * width
    return {(True, False): "letterbox", (False, True): "pillarbox", (True, True): "windowbox"}.get(
        (rows, cols)
    )


def phash(gray: np.ndarray) -> np.ndarray:
    """64-bit perceptual hash: DCT of a 32x32 grey thumbnail, 8x8 lowest frequencies > median."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    return low > np.median(low)


def translation_std(frames: np.ndarray) -> float:
    """Std of the whole frame's frame-to-frame translation (phase correlation), in widths."""
    h, w = frames.shape[1:]
    size = (256, max(8, round(h * 256 / w)))
    small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA).astype(np.float32) for f in frames]
    moves = [cv2.phaseCorrelate(a, b)[0] for a, b in pairwise(small)]
    return float(np.std(np.array(moves), axis=0).max() / size[0]) if len(moves) > 1 else 0.0


def shot_measures(frames: np.ndarray) -> dict:
    mid = frames[len(frames) // 2]
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2))
    return {
        "translation_std": translation_std(frames),
        "laplacian_var": float(cv2.Laplacian(mid, cv2.CV_64F).var()),
        "mean_luma": float(frames.mean()),
        "median_frame_diff": float(np.median(diffs)) if len(diffs) else 0.0,
        "phash": phash(mid),
    }


def load_set(folder: Path) -> list[dict]:
    paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("_"))
    docs = [json.loads(p.read_text()) for p in paths]
    if not docs:
        raise SystemExit(f"no ground truth in {folder}")
    return sorted(docs, key=lambda d: d.get("build_order", 0))


def predict(folder: Path, docs: list[dict]) -> list[dict]:
    """One row per shot: truth, measures and the recipes' predicted flags."""
    rows: list[dict] = []
    engine = ocr_engine()
    for doc in docs:
        w, h = doc["width"], doc["height"]
        frames = decode_gray(folder / doc["film"], w, h)
        boxes = cropdetect_boxes(folder / doc["film"])
        if len(frames) != doc["n_frames"] or len(boxes) != doc["n_frames"]:
            raise SystemExit(f"{doc['film']}: {len(frames)} frames, {len(boxes)} crop lines")
        for shot in doc["shots"]:
            a, b = shot["start_frame"], shot["end_frame"]
            m = shot_measures(frames[a:b])
            crop = union(boxes[a:b], w, h)
            flags = {bars_kind(crop, w, h)} - {None}
            flags |= {"blurry"} if m["laplacian_var"] < LAPLACIAN_VAR_BLURRY else set()
            flags |= {"black"} if m["mean_luma"] < BLACK_MEAN_LUMA else set()
            flags |= {"static"} if m["median_frame_diff"] < STATIC_MEAN_ABS_DIFF else set()
            flags |= {"shaky"} if m["translation_std"] > SHAKE_STD else set()
            flags |= ocr_flags(engine, frames[(a + b) // 2])
            match = None
            best = PHASH_MAX_HAMMING + 1
            for prev in rows:
                if prev["film"] == doc["film"]:
                    continue
                dist = int(np.count_nonzero(prev["phash"] != m["phash"]))
                if dist < best:
                    best, match = dist, {"film": prev["film"], "shot": prev["shot"]}
            if match:
                flags.add("duplicate")
            rows.append(
                {
                    "film": doc["film"],
                    "shot": shot["index"],
                    "truth": set(shot["flags"]),
                    "truth_crop": shot["crop"],
                    "truth_dup": shot.get("duplicate_of"),
                    "pred": flags,
                    "crop": crop,
                    "dup": match,
                    "iou": iou(crop, shot["crop"]),
                    "notes": shot.get("notes", []),
                    **m,
                }
            )
    return rows


def score(rows: list[dict], docs: list[dict]) -> dict:
    ocr = ocr_available()
    per_flag = {}
    for flag in FLAGS:
        truth = sum(flag in r["truth"] for r in rows)
        if flag == "watermark":
            truth = sum(d.get("watermark") is not None for d in docs)
            per_flag[flag] = {"truth": truth, "run": False, "why": "no plain recipe (film-level)"}
            continue
        if flag in ("text_overlay", "credits") and ocr != "rapidocr_onnxruntime":
            why = f"{ocr} is not wired" if ocr else "no OCR package installed"
            per_flag[flag] = {"truth": truth, "run": False, "why": why}
            continue
        pred = sum(flag in r["pred"] for r in rows)
        if flag == "duplicate":  # a hit needs the right original
            tp = sum(flag in r["pred"] and r["dup"] == r["truth_dup"] for r in rows)
        else:
            tp = sum(flag in r["pred"] and flag in r["truth"] for r in rows)
        per_flag[flag] = {
            "truth": truth,
            "pred": pred,
            "tp": tp,
            "precision": tp / pred if pred else None,
            "recall": tp / truth if truth else None,
            "run": True,
        }
    clean = [r for r in rows if not r["truth"] & set(DROP_FLAGS)]
    flagged = [r for r in clean if r["pred"] & set(DROP_FLAGS)]
    full = [r for r in rows if not r["truth"] & {"letterbox", "pillarbox", "windowbox"}]
    ious = [r["iou"] for r in rows]
    return {
        "shots": len(rows),
        "films": len(docs),
        "flags": per_flag,
        "crop_iou_mean": float(np.mean(ious)),
        "crop_iou_min": float(np.min(ious)),
        "crop_iou_ge_098": sum(v >= 0.98 for v in ious) / len(ious),
        "full_frame_shots_cropped": sum(bool(r["pred"] & set(FLAGS[:3])) for r in full),
        "full_frame_shots": len(full),
        "clean_shots": len(clean),
        "clean_shots_flagged": len(flagged),
        # the keyframe flags alone (text_overlay, credits, blurry): keyframes.py's comparison
        "clean_shots_flagged_keyframe": sum(bool(r["pred"] & set(KEYFRAME_FLAGS)) for r in clean),
        "clean_flagged_examples": [f"{r['film']}#{r['shot']} {sorted(r['pred'])}" for r in flagged],
        "ocr_package": ocr,
    }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(s: dict) -> str:
    lines = [
        f"{s['films']} films, {s['shots']} shots (true shot boundaries given to every recipe)",
        "",
        "| flag | plain recipe | true shots | flagged | precision | recall |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for flag, v in s["flags"].items():
        if v["run"]:
            lines.append(
                f"| {flag} | {RECIPES[flag]} | {v['truth']} | {v['pred']} | "
                f"{_fmt(v['precision'])} | {_fmt(v['recall'])} |"
            )
        else:
            unit = " films" if flag == "watermark" else ""
            why = f"not run: {v['why']}"
            lines.append(f"| {flag} | {RECIPES[flag]} | {v['truth']}{unit} | {why} | - | - |")
    dup = s["flags"]["duplicate"]
    lines += [
        "",
        "| measure | value |",
        "|---|---:|",
        f"| crop IoU, mean over shots (cropdetect) | {s['crop_iou_mean']:.3f} |",
        f"| crop IoU, worst shot | {s['crop_iou_min']:.3f} |",
        f"| shots with crop IoU >= 0.98 | {s['crop_iou_ge_098']:.0%} |",
        f"| full-frame shots given bars | {s['full_frame_shots_cropped']} of "
        f"{s['full_frame_shots']} |",
        f"| duplicate recall (right original) | {_fmt(dup['recall'])} |",
        f"| clean shots falsely flagged (drop flags) | {s['clean_shots_flagged']} of "
        f"{s['clean_shots']} ({s['clean_shots_flagged'] / max(1, s['clean_shots']):.0%}) |",
        f"| clean shots falsely flagged (text_overlay, credits, blurry) | "
        f"{s['clean_shots_flagged_keyframe']} of {s['clean_shots']} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="write the scores as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table")
    args = parser.parse_args(argv)
    docs = load_set(args.folder)
    rows = predict(args.folder, docs)
    scores = score(rows, docs)
    table = markdown(scores)
    print(table, end="")
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        shots = [
            {k: (sorted(v) if isinstance(v, set) else v) for k, v in r.items() if k != "phash"}
            for r in rows
        ]
        args.json.write_text(json.dumps({"scores": scores, "shots": shots}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
