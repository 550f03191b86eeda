"""Score a real build of the curation set against its ground truth: what a user gets.

    python benchmarks/curation/score_build.py SET_DIR --out OUT [--config default] [--json F]
    python benchmarks/curation/score_build.py SET_DIR --out OUT --no-build   # score OUT as is

Builds every ``SET_DIR/cur_*.mp4`` with ``muss-builder build`` (the CLI, local Ray, the given
pipeline; films in ``build_order`` so a duplicate's original comes first), then reads the film
records and scores, per ground-truth shot (the detected shot that holds its middle frame
speaks for it):

- per flag (every dropping flag and the bar kinds): precision and recall over the set's shots;
- crop IoU of each shot's ``crop`` with the true box, and full-frame shots given bars;
- the watermark box IoU per watermarked film, and films given a watermark they do not have;
- duplicates: a hit must name the right film and shot;
- clean shots (no dropping flag in the truth) that got a dropping flag;
- film outcomes: the ``--edge`` films' expected ``skipped`` / ``duplicate`` status and reason.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the set's truth flags live in make_set
from make_set import BAR_FLAGS, DROP_FLAGS


def iou(a: list[int], b: list[int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def load_truth(set_dir: Path) -> list[dict]:
    docs = [json.loads(p.read_text()) for p in sorted(set_dir.glob("cur_*.json"))]
    return sorted(docs, key=lambda d: d["build_order"])


def run_build(set_dir: Path, docs: list[dict], out: Path, config: str) -> float:
    cli = Path(sys.executable).with_name("muss-builder")
    films = [str(set_dir / d["film"]) for d in docs]
    started = time.perf_counter()
    proc = subprocess.run(
        [str(cli), "build", *films, "--out", str(out), "--config", config],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def read_build(out: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """(film file name -> films.parquet row, film file name -> film record or {})."""
    rows = {Path(r["path"]).name: r for r in pq.read_table(out / "films.parquet").to_pylist()}
    records = {}
    for name, row in rows.items():
        path = out / "films" / f"{row['film_id']}.json"
        records[name] = json.loads(path.read_text()) if row["film_id"] and path.is_file() else {}
    return rows, records


def shot_at(record: dict, frame: int) -> dict | None:
    for shot in record.get("shots", []):
        if shot["start_frame"] <= frame < shot["end_frame"]:
            return shot
    return None


def score(docs: list[dict], rows: dict[str, dict], records: dict[str, dict]) -> dict[str, Any]:
    names = {row["film_id"]: name for name, row in rows.items()}
    counts = {f: {"tp": 0, "fp": 0, "fn": 0} for f in (*DROP_FLAGS, *BAR_FLAGS)}
    ious, full_given_bars, clean, clean_flagged, dup_right, dup_total = [], 0, 0, 0, 0, 0
    films: list[dict] = []
    for doc in docs:
        record = records.get(doc["film"], {})
        for truth in doc["shots"]:
            mid = (truth["start_frame"] + truth["end_frame"]) // 2
            shot = shot_at(record, mid) or {}
            got = set(shot.get("flags") or [])
            want = set(truth["flags"])
            for flag, c in counts.items():
                c["tp"] += flag in got and flag in want
                c["fp"] += flag in got and flag not in want
                c["fn"] += flag not in got and flag in want
            if shot.get("crop"):
                ious.append(iou(shot["crop"], truth["crop"]))
                whole = [0, 0, doc["width"], doc["height"]]
                full_given_bars += truth["crop"] == whole and shot["crop"] != whole
            if not want & set(DROP_FLAGS):
                clean += 1
                clean_flagged += bool(got & set(DROP_FLAGS))
            if truth["duplicate_of"]:
                dup_total += 1
                found = shot.get("duplicate_of") or {}
                dup_right += (
                    names.get(found.get("film_id")) == truth["duplicate_of"]["film"]
                    and found.get("shot") == truth["duplicate_of"]["shot"]
                )
        films.append(film_outcome(doc, rows.get(doc["film"], {}), record, names))
    flags = {
        f: {
            **c,
            "precision": c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None,
            "recall": c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None,
        }
        for f, c in counts.items()
    }
    return {
        "shots": sum(len(d["shots"]) for d in docs),
        "flags": flags,
        "crop_iou_mean": sum(ious) / len(ious) if ious else None,
        "crop_iou_min": min(ious) if ious else None,
        "full_frame_shots_given_bars": full_given_bars,
        "clean_shots": clean,
        "clean_shots_flagged": clean_flagged,
        "duplicate_recall": dup_right / dup_total if dup_total else None,
        "films": films,
    }


def film_outcome(doc: dict, row: dict, record: dict, names: dict[str, str]) -> dict:
    truth_mark = (doc.get("watermark") or {}).get("box")
    found_mark = (record.get("watermark") or {}).get("box")
    outcome = {
        "film": doc["film"],
        "status": row.get("status"),
        "reason": row.get("reason"),
        "watermark_iou": iou(found_mark, truth_mark) if truth_mark and found_mark else None,
        "watermark_false": bool(found_mark and not truth_mark),
        "watermark_missed": bool(truth_mark and not found_mark),
    }
    if "expected_status" in doc:
        dup = (record.get("duplicate_of") or {}).get("film_id")
        right_status = row.get("status") == doc["expected_status"]
        right_reason = doc["expected_reason"] in (row.get("reason") or "")
        if doc["expected_status"] == "duplicate":
            right_reason = names.get(dup) == doc.get("duplicate_of")
        outcome |= {"expected": doc["expected_status"], "right": right_status and right_reason}
    return outcome


def markdown(scores: dict) -> str:
    lines = ["| flag | true shots | flagged | precision | recall |", "|---|---:|---:|---:|---:|"]
    for flag, c in scores["flags"].items():
        p = "-" if c["precision"] is None else f"{c['precision']:.2f}"
        r = "-" if c["recall"] is None else f"{c['recall']:.2f}"
        lines.append(f"| {flag} | {c['tp'] + c['fn']} | {c['tp'] + c['fp']} | {p} | {r} |")
    lines.append("")
    crop = scores["crop_iou_mean"]
    lines.append(
        f"- crop IoU mean {crop:.3f}, min {scores['crop_iou_min']:.3f}"
        if crop
        else "- crop: none recorded"
    )
    lines.append(f"- full-frame shots given bars: {scores['full_frame_shots_given_bars']}")
    lines.append(
        f"- clean shots falsely flagged: {scores['clean_shots_flagged']} of {scores['clean_shots']}"
    )
    dup = scores["duplicate_recall"]
    lines.append(f"- duplicate recall (right film and shot): {dup:.2f}" if dup is not None else "")
    for film in scores["films"]:
        extra = []
        if film["watermark_iou"] is not None:
            extra.append(f"watermark IoU {film['watermark_iou']:.3f}")
        if film["watermark_false"] or film["watermark_missed"]:
            extra.append("watermark " + ("false" if film["watermark_false"] else "missed"))
        if "expected" in film:
            extra.append(f"expected {film['expected']}: {'right' if film['right'] else 'WRONG'}")
        lines.append(
            f"- {film['film']}: {film['status']} ({film['reason'] or ''}) {'; '.join(extra)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="default")
    parser.add_argument("--no-build", action="store_true", help="score OUT as it is")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.no_build and args.out.exists() and any(args.out.iterdir()):
        # a build into a used OUT resumes: it would skip every film and score the old records
        parser.error(f"{args.out} is not empty: remove it, or pass --no-build to score it as it is")
    docs = load_truth(args.set_dir)
    wall = None if args.no_build else run_build(args.set_dir, docs, args.out, args.config)
    rows, records = read_build(args.out)
    scores = score(docs, rows, records) | {"build_seconds": wall, "config": args.config}
    print(markdown(scores))
    if wall is not None:
        print(f"\nbuild wall time {wall:.1f} s ({args.config})")
    if args.json:
        args.json.write_text(json.dumps(scores, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
