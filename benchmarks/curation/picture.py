"""Score the picture filters (``muss_builder.curation.picture``) on a curation set.

    .venv/bin/python benchmarks/curation/picture.py DIR [--width 256] [--pipeline]
        [--baselines] [--speed FILM] [--json OUT]

Default: each film is decoded once at the analysis size, every frame fed to the picture
observer, and the report asked for the TRUE shots (what is measured is the filter, not shot
detection). ``--pipeline`` runs ``analyse_film`` instead (the shot detector's own shots, one
decode for both) and scores each true shot by the detected shot that covers most of it.
Scores: per flag precision and recall (black, static, flash; bars; the film's watermark with
the IoU of its box), crop IoU, clean shots falsely flagged; ``--baselines`` adds the plain
recipes of ``baselines.py`` on the same set. ``--speed FILM`` times the shot decode with the
detector alone and with the picture observers riding it (median of 3, per 1000 frames).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.curation.picture import (
    ObserverFactory,
    PictureConfig,
    analyse_film,
    picture_report,
)
from muss_builder.media.decode import FrameReader
from muss_builder.media.probe import probe_film
from muss_builder.shots.detector import analysis_size
from muss_builder.shots.segment import detect_shots_single_pass

HERE = Path(__file__).resolve().parent
QUALITY = ("black", "static", "flash", "shaky")
BARS = ("letterbox", "pillarbox", "windowbox")
DROP = {"black", "static", "shaky", "blurry", "text_overlay", "credits", "duplicate"}
ONE_FRAME_FROZEN_DIFF = 0.5  # grey levels: a frame frozen under the rule before holds


def _baselines():
    spec = importlib.util.spec_from_file_location("curation_baselines", HERE / "baselines.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def report_of(folder: Path, doc: dict, width: int, pipeline: bool):
    """(report, per true shot: the index of the report's shot that covers most of it)."""
    path = folder / doc["film"]
    probe = probe_film(path)
    analysis = AnalysisConfig(width=width)
    truth = [(s["start_frame"], s["end_frame"]) for s in doc["shots"]]
    if pipeline:
        detection, report = analyse_film(path, probe, ShotsConfig(), analysis, PictureConfig())
        found = [(s.start_frame, s.end_frame) for s in detection.shots]
        cover = [max(range(len(found)), key=lambda k: min(b, found[k][1]) - max(a, found[k][0]))
                 for a, b in truth]  # fmt: skip
        return report, cover
    w, h = analysis_size(probe, analysis)
    observer = ObserverFactory(w, h, PictureConfig())(0, None)
    for frame in FrameReader(path, (w, h), scale_flags=analysis.scale_flags):
        observer.process_frame(frame.index, frame.image)
    merged, cells, motion = type(observer).merged([observer])
    size = (probe.width, probe.height)
    return picture_report(merged, cells, motion, truth, size, probe.fps), list(range(len(truth)))


def run(folder: Path, width: int, pipeline: bool) -> tuple[list[dict], list[dict]]:
    base = _baselines()
    rows, films = [], []
    for doc in base.load_set(folder):
        report, cover = report_of(folder, doc, width, pipeline)
        mark = report.watermark
        truth_mark = (doc.get("watermark") or {}).get("box")
        films.append({
            "film": doc["film"], "truth_watermark": truth_mark,
            "watermark": mark.box if mark else None, "score": mark.score if mark else None,
            "iou": base.iou(mark.box, truth_mark) if mark and truth_mark else None,
            "seconds": report.seconds,
        })  # fmt: skip
        for shot, k in zip(doc["shots"], cover, strict=True):
            rows.append({
                "film": doc["film"], "shot": shot["index"], "truth": sorted(shot["flags"]),
                "notes": shot.get("notes", []), "content": shot.get("content"),
                "pred": report.shot_flags[k], "quality": report.shot_quality[k],
                "crop": report.shot_crops[k], "iou": base.iou(report.shot_crops[k], shot["crop"]),
            })  # fmt: skip
    return rows, films


def score(rows: list[dict], films: list[dict]) -> dict:
    out: dict = {"shots": len(rows), "films": len(films), "flags": {}}
    for flag in (*QUALITY, *BARS):
        truth = sum(flag in r["truth"] for r in rows)
        pred = sum(flag in r["pred"] for r in rows)
        tp = sum(flag in r["pred"] and flag in r["truth"] for r in rows)
        # false hits on shots the truth drops anyway for another reason (a static credits
        # card is frozen: "static" is true of it, but its truth names "credits" only)
        other = sum(flag in r["pred"] and flag not in r["truth"]
                    and bool(set(r["truth"]) & DROP) for r in rows)  # fmt: skip
        out["flags"][flag] = {"truth": truth, "pred": pred, "tp": tp, "fp_dropped_anyway": other,
                              "precision": tp / pred if pred else None,
                              "recall": tp / truth if truth else None}  # fmt: skip
    truth = sum(f["truth_watermark"] is not None for f in films)
    pred = sum(f["watermark"] is not None for f in films)
    tp = sum(f["watermark"] is not None and f["truth_watermark"] is not None for f in films)
    ious = [f["iou"] for f in films if f["iou"] is not None]
    out["flags"]["watermark"] = {"truth": truth, "pred": pred, "tp": tp,
                                 "precision": tp / pred if pred else None,
                                 "recall": tp / truth if truth else None,
                                 "box_iou": min(ious) if ious else None}  # fmt: skip
    clean = [r for r in rows if not set(r["truth"]) & DROP]
    flagged = [r for r in clean if set(r["pred"]) & set(QUALITY)]
    ious = [r["iou"] for r in rows]
    out |= {
        "clean_shots": len(clean), "clean_shots_flagged": len(flagged),
        "clean_flagged": [f"{r['film']}#{r['shot']} {r['pred']}" for r in flagged],
        "crop_iou_mean": sum(ious) / len(ious), "crop_iou_min": min(ious),
        "crop_iou_ge_098": sum(v >= 0.98 for v in ious) / len(ious),
    }  # fmt: skip
    return out


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(ours: dict, base: dict | None) -> str:
    head = "| flag | truth | found | ours P | ours R | false hits on shots dropped anyway |"
    head += " baseline P | baseline R |" if base else ""
    lines = [head, "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if base else "")]
    for flag, s in ours["flags"].items():
        cells = (f"| {flag} | {s['truth']} | {s['pred']} | {_f(s['precision'])} | "
                 f"{_f(s['recall'])} | {s.get('fp_dropped_anyway', '-')} |")  # fmt: skip
        b = (base or {}).get("flags", {}).get(flag)
        if base:
            cells += (f" {_f(b.get('precision'))} | {_f(b.get('recall'))} |"
                      if b and b.get("run", True) else " not run | not run |")  # fmt: skip
        lines.append(cells)
    wm = ours["flags"]["watermark"]["box_iou"]
    lines += [
        "",
        f"- watermark box IoU (worst watermarked film): {_f(wm)}",
        f"- crop IoU: mean {ours['crop_iou_mean']:.3f}, worst {ours['crop_iou_min']:.3f}, "
        f">= 0.98 on {ours['crop_iou_ge_098']:.0%} of shots"
        + (f" (cropdetect: mean {base['crop_iou_mean']:.3f})" if base else ""),
        "- clean shots falsely flagged (black/static/flash/shaky): "
        f"{ours['clean_shots_flagged']} of {ours['clean_shots']}"
        + (
            f" (baseline, its drop flags: {base['clean_shots_flagged']} of {base['clean_shots']})"
            if base
            else ""
        ),
    ]
    return "\n".join(lines)


def calibrate(folder: Path, width: int) -> dict:
    """The numbers behind the defaults: per-frame values of the true shots, inside the true
    crop (frames of text cards are listed apart: a static card is frozen, its truth says
    ``credits``)."""
    from muss_builder.curation.frame_quality import DIFF_SCALE, local_median

    base, cfg = _baselines(), PictureConfig()
    out: dict[str, list[float]] = {k: [] for k in (
        "black_shot_frame_dark_min", "other_frame_dark_max", "frozen_frame_diff_max",
        "moving_frame_diff_min", "card_frame_diff_max", "flash_rise_max", "scene_std_median",
    )}  # fmt: skip
    for doc in base.load_set(folder):
        path = folder / doc["film"]
        probe = probe_film(path)
        w, h = analysis_size(probe, AnalysisConfig(width=width))
        obs = ObserverFactory(w, h, cfg)(0, None)
        for frame in FrameReader(path, (w, h)):
            obs.process_frame(frame.index, frame.image)
        merged, cells, _motion = type(obs).merged([obs])
        s = merged.marks.sums
        n = max(1, merged.marks.frames)
        std = np.sqrt(np.maximum(s["level2"] / n - (s["level"] / n) ** 2, 0))
        out["scene_std_median"].append(float(np.median(std[8:-8, 8:-8])))
        for shot in doc["shots"]:
            a, b = shot["start_frame"], shot["end_frame"]
            x0, y0, x1, y1 = shot["crop"]
            box = [x0 * w // probe.width, y0 * h // probe.height,
                   -(-x1 * w // probe.width), -(-y1 * h // probe.height)]  # fmt: skip
            mask = merged.cells.cell_mask(box, None)
            c = cells[a:b]
            dark = (c[:, 1][:, mask] / 255.0).mean(axis=1)
            diff = (c[:, 2][:, mask] / DIFF_SCALE).max(axis=1)[1:]
            luma = c[:, 0][:, mask].astype(float).mean(axis=1)
            card = shot["content"] in ("credits", "scroll")
            if "black" in shot["flags"]:
                out["black_shot_frame_dark_min"].append(float(dark.min()))
                continue
            out["other_frame_dark_max"].append(float(dark.max()))
            out["flash_rise_max"].append(float((luma - local_median(luma)).max()))
            fz = shot.get("frozen")
            if fz:  # frames after the held one
                out["frozen_frame_diff_max"] += diff[fz[0] - a :].tolist()
            elif card:
                out["card_frame_diff_max"] += diff.tolist()
            else:
                out["moving_frame_diff_min"] += diff.tolist()
    res = {k: round(max(v), 3) for k, v in out.items() if v}
    for k in ("moving_frame_diff", "frozen_frame_diff"):
        vals = np.asarray(out[k + ("_min" if "moving" in k else "_max")])
        res[k + "_percentiles_1_50_99"] = [round(float(np.percentile(vals, q)), 3)
                                           for q in (1, 50, 99)]  # fmt: skip
        # the one-frame rule before holds (static_holds.py calibrates the holds)
        res[k + "_share_le_0.5"] = round(float((vals <= ONE_FRAME_FROZEN_DIFF).mean()), 3)
    res["moving_frame_diff_min"] = round(min(out["moving_frame_diff_min"]), 3)
    res["black_shot_frame_dark_min"] = round(min(out["black_shot_frame_dark_min"]), 3)
    res["scene_std_median_min"] = round(min(out["scene_std_median"]), 2)
    return res


def speed(film: Path, width: int, repeats: int = 3) -> dict:
    """Seconds per 1000 analysis frames: the shot decode alone, and with the observers."""
    probe = probe_film(film)
    shots, analysis = ShotsConfig(), AnalysisConfig(width=width)
    alone, both, parts = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det = detect_shots_single_pass(film, probe, shots, analysis)
        alone.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, report = analyse_film(film, probe, shots, analysis, PictureConfig())
        both.append(time.perf_counter() - t0)
        parts.append(report.seconds if report else {})
    per_k = 1000.0 / det.n_frames
    med = {k: statistics.median(p[k] for p in parts) * per_k for k in parts[0]}
    return {
        "film": film.name, "frames": det.n_frames,
        "detector_alone_s_per_1000": round(statistics.median(alone) * per_k, 3),
        "with_picture_s_per_1000": round(statistics.median(both) * per_k, 3),
        "observer_parts_s_per_1000": {k: round(v, 3) for k, v in med.items()},
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--width", type=int, default=256, help="analysis width")
    parser.add_argument("--pipeline", action="store_true", help="detected shots (analyse_film)")
    parser.add_argument("--baselines", action="store_true", help="also score baselines.py")
    parser.add_argument("--speed", type=Path, help="time the observers on this film")
    parser.add_argument("--json", type=Path, help="write rows and scores here")
    parser.add_argument("--calibrate", action="store_true", help="print the threshold numbers")
    args = parser.parse_args(argv)
    if args.calibrate:
        print(json.dumps(calibrate(args.folder, args.width), indent=1))
        return 0
    rows, films = run(args.folder, args.width, args.pipeline)
    ours = score(rows, films)
    base = None
    if args.baselines:
        b = _baselines()
        docs = b.load_set(args.folder)
        base = b.score(b.predict(args.folder, docs), docs)
    print(markdown(ours, base))
    for f in films:
        print(f"# {f['film']}: watermark {f['watermark']} (truth {f['truth_watermark']})")
    for r in ours["clean_flagged"]:
        print(f"# clean shot flagged: {r}")
    timing = speed(args.speed, args.width) if args.speed else None
    if timing:
        print(json.dumps(timing, indent=1))
    if args.json:
        doc = {"scores": ours, "baseline": base, "speed": timing, "rows": rows, "films": films}
        args.json.write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
