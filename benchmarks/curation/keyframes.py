"""Score the keyframe filters (text_overlay, credits, blurry) on the curation set.

    python benchmarks/curation/keyframes.py DIR [--per-shot N] [--max-side S] [--threads T]
        [--subtitles drop|crop] [--json OUT]

Each film is decoded once; each shot's keyframes are the frames the subject stage would pick
(``subjects.keyframes.keyframe_frames``, ``--per-shot`` per shot, default 3, like
``subjects.keyframes_per_shot``), shrunk to ``--max-side`` (default 1280, like
``subjects.keyframe_max_side``), cropped to the shot's TRUE active picture and given the film's
TRUE watermark box (the bar and logo detectors are scored elsewhere), then fed in film order to
``KeyframeQualityCollector``. Truth: a shot's ``flags`` in the set's JSON. Clean shots are the
ones without any dropping flag; "falsely flagged" counts the three flags scored here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from muss_builder.core.overrides import dotted_overrides
from muss_builder.curation.keyframe_quality import (
    FLAGS,
    KeyframeQualityCollector,
    KeyframeQualityConfig,
    load_text_detector,
)
from muss_builder.media.tools import binary
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe, keyframe_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the set's truth flags live in make_set
from make_set import DROP_FLAGS


def read_frames(path: Path, w: int, h: int, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) for the wanted frame indices, streaming one decode."""
    import subprocess

    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path)]
    args += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # killed early
    size = w * h * 3
    try:
        for i in range(max(wanted) + 1):
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            if i in wanted:
                yield i, np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


def shots_of(doc: dict) -> list[Shot]:
    fps = doc["fps"]
    return [
        Shot(
            s["index"], s["start_frame"], s["end_frame"], s["start_frame"] / fps,
            s["end_frame"] / fps, "cut" if s["index"] else "start",
        )
        for s in doc["shots"]
    ]  # fmt: skip


def film_keyframes(
    folder: Path, doc: dict, per_shot: int, max_side: int
) -> tuple[list[Shot], dict[int, list[int] | None], list[Keyframe]]:
    import cv2

    w, h = doc["width"], doc["height"]
    scale = min(1.0, max_side / max(w, h))
    shots = shots_of(doc)
    chosen = keyframe_frames(shots, per_shot)
    shot_of = {f: s for s, frames in chosen.items() for f in frames}
    crops = {s["index"]: [round(v * scale) for v in s["crop"]] for s in doc["shots"]}
    mark = (doc.get("watermark") or {}).get("box")
    marks: dict[int, list[int] | None] = {}
    for i, (x0, y0, x1, y1) in crops.items():
        if mark is None:
            marks[i] = None
            continue
        m = [round(v * scale) for v in mark]
        box = [max(0, m[0] - x0), max(0, m[1] - y0), min(x1, m[2]) - x0, min(y1, m[3]) - y0]
        marks[i] = box if box[2] > box[0] and box[3] > box[1] else None
    frames = []
    for index, image in read_frames(folder / doc["film"], w, h, set(shot_of)):
        if scale < 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), cv2.INTER_AREA)
        x0, y0, x1, y1 = crops[shot_of[index]]
        frames.append(Keyframe(shot_of[index], index, np.ascontiguousarray(image[y0:y1, x0:x1])))
    return shots, marks, frames


def run(folder: Path, per_shot: int, max_side: int, config: KeyframeQualityConfig) -> dict:
    paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("_"))
    detector = load_text_detector(config)
    rows, text_ms, sharp_ms, edge_ms = [], [], [], []
    for path in paths:
        doc = json.loads(path.read_text())
        shots, marks, frames = film_keyframes(folder, doc, per_shot, max_side)
        collector = KeyframeQualityCollector(shots, config, marks, detector=detector)
        for kf in frames:
            collector.add(kf, True)
        report = collector.finish()
        text_ms += report.text_ms
        sharp_ms += report.sharpness_ms
        edge_ms += report.edge_width_ms
        for s in doc["shots"]:
            got = report.shots[s["index"]]
            rows.append(
                {
                    "film": doc["film"],
                    "shot": s["index"],
                    "truth": sorted(s["flags"]),
                    "notes": s.get("notes", []),
                    "content": s.get("content"),
                    "pred": got.flags,
                    "quality": {k: round(v, 4) for k, v in got.quality.items()},
                    "text_band": got.text_band,
                }
            )
    return {
        "rows": rows,
        "scores": score(rows),
        "text_ms": text_ms,
        "sharpness_ms": sharp_ms,
        "edge_width_ms": edge_ms,
    }


def score(rows: list[dict]) -> dict:
    out: dict = {"shots": len(rows), "flags": {}}
    for flag in FLAGS:
        truth = sum(flag in r["truth"] for r in rows)
        pred = sum(flag in r["pred"] for r in rows)
        tp = sum(flag in r["pred"] and flag in r["truth"] for r in rows)
        out["flags"][flag] = {
            "truth": truth,
            "pred": pred,
            "tp": tp,
            "precision": tp / pred if pred else None,
            "recall": tp / truth if truth else None,
            "wrong": [
                f"{r['film']}#{r['shot']}"
                for r in rows
                if (flag in r["pred"]) != (flag in r["truth"])
            ],
        }
    clean = [r for r in rows if not set(r["truth"]) & set(DROP_FLAGS)]
    flagged = [r for r in clean if set(r["pred"]) & set(FLAGS)]
    out["clean_shots"] = len(clean)
    # how far the threshold is from the nearest shot on either side
    rel = [(r["quality"].get("sharpness_rel"), "blurry" in r["truth"]) for r in rows]
    rel = [(v, t) for v, t in rel if v]  # black holds read 0 and are not judged
    out["blurry_rel_max"] = max((v for v, t in rel if t), default=None)
    out["other_rel_min"] = min((v for v, t in rel if not t), default=None)
    out["clean_flagged"] = [f"{r['film']}#{r['shot']} {r['pred']}" for r in flagged]
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(result: dict) -> str:
    s = result["scores"]
    lines = [
        f"{s['shots']} shots; true crops and watermark boxes given",
        "",
        "| flag | true shots | flagged | precision | recall | wrong |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for flag, v in s["flags"].items():
        wrong = ", ".join(v["wrong"]) or "-"
        lines.append(
            f"| {flag} | {v['truth']} | {v['pred']} | {_fmt(v['precision'])} | "
            f"{_fmt(v['recall'])} | {wrong} |"
        )
    n, c = len(s["clean_flagged"]), s["clean_shots"]
    lines += ["", f"clean shots falsely flagged: {n} of {c} ({n / max(1, c):.0%})"]
    lines.append(
        f"sharpness_rel: blurred shots <= {_fmt(s['blurry_rel_max'])}, other shots >= "
        f"{_fmt(s['other_rel_min'])} (threshold {KeyframeQualityConfig().blur.relative_threshold})"
    )
    for name, unit in (("text_ms", "keyframe"), ("sharpness_ms", "keyframe"),
                       ("edge_width_ms", "shot")):  # fmt: skip
        if result[name]:
            lines.append(
                f"{name[:-3]} per {unit}: median {statistics.median(result[name]):.1f} ms "
                f"({len(result[name])} {unit}s)"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-shot", type=int, default=3)
    parser.add_argument("--max-side", type=int, default=1280)
    parser.add_argument("--threads", type=int, default=1, help="detector intra-op threads")
    parser.add_argument("--subtitles", choices=("drop", "crop"), default="drop")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a text filter setting, e.g. --text screen_max_side=512 (VALUE read as YAML)",
    )
    args = parser.parse_args(argv)
    text = {"threads": args.threads, "subtitles": args.subtitles}
    text |= dotted_overrides(args.text)
    config = KeyframeQualityConfig.model_validate({"text": text})
    result = run(args.folder, args.per_shot, args.max_side, config)
    print(markdown(result), end="")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
