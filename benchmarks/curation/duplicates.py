"""Score the near-duplicate detector (muss_builder.curation.duplicates) on the curation set.

    python benchmarks/curation/duplicates.py DIR [--json F] [--tmp T] [--faiss-shots N]

Films are claimed in ``build_order`` through one ``DuplicateRegistry`` (as a build would), each
shot's frames decoded at the ground-truth boundaries, cropped to the ground-truth active
picture, the logo box (``watermark``) passed as the collector's watermark box. Printed: duplicate
precision and recall (a hit must name the right original), the same-set-up negative, clean shots
falsely flagged, the similarity of every duplicate and the highest of the rest (each shot's best
similarity to every shot claimed before it, recorded by the claim or not), next to the pHash
baseline of ``baselines.py`` (middle frame, Hamming <= 10) on the same frames. Then a whole-film
duplicate: ``cur_plain`` re-encoded at 640x360, crf 30, a little darker (ffmpeg, into ``--tmp``),
claimed last; and a resumed registry (a fresh one on the same output folder) that must still
find it. Last, FAISS query cost per shot at ``--faiss-shots`` indexed shots (synthetic unit
vectors, median of 200 single-shot queries).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import PHASH_MAX_HAMMING, load_set, phash

from muss_builder.curation.duplicate_index import FingerprintIndex, own_matches
from muss_builder.curation.duplicates import (
    DuplicatesConfig,
    ShotFingerprintCollector,
    ShotFingerprints,
)
from muss_builder.runtime.duplicate_registry import DuplicateRegistry
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe


def decode(path: Path, width: int, height: int, wanted: set[int]) -> dict[int, np.ndarray]:
    """The ``wanted`` frames (BGR) of a film, every frame decoded, only those kept."""
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    size = width * height * 3
    out, i = {}, 0
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        if i in wanted:
            out[i] = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
        i += 1
    proc.wait()
    return out


def probe_size(path: Path) -> tuple[int, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def fingerprint(path: Path, doc: dict, config: DuplicatesConfig) -> tuple:
    """(ShotFingerprints, shot seconds, pHash of each shot's middle frame)."""
    w, h = probe_size(path)
    sx, sy = w / doc["width"], h / doc["height"]
    shots = [
        Shot(s["index"], s["start_frame"], s["end_frame"], s["start_frame"] / doc["fps"],
             s["end_frame"] / doc["fps"], "cut")
        for s in doc["shots"]
    ]  # fmt: skip
    wm = (doc.get("watermark") or {}).get("box")
    boxes, crops = {}, {}
    for s in doc["shots"]:
        x0, y0, x1, y1 = s["crop"]
        crops[s["index"]] = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
        boxes[s["index"]] = (
            None
            if wm is None
            else [round(wm[0] * sx) - round(x0 * sx), round(wm[1] * sy) - round(y0 * sy),
                  round(wm[2] * sx) - round(x0 * sx), round(wm[3] * sy) - round(y0 * sy)]
        )  # fmt: skip
    collector = ShotFingerprintCollector(shots, config, boxes)
    mids = {(s.start_frame + s.end_frame) // 2: s.index for s in shots}
    wanted = {f for fs in collector.wanted().values() for f in fs} | set(mids)
    frames = decode(path, w, h, wanted)
    hashes = {}
    for shot in shots:
        x0, y0, x1, y1 = crops[shot.index]
        for f in collector.wanted()[shot.index]:
            collector.add(Keyframe(shot.index, f, frames[f][y0:y1, x0:x1]), True)
    for f, idx in mids.items():
        x0, y0, x1, y1 = crops[idx]
        gray = frames[f][y0:y1, x0:x1].mean(axis=2).astype(np.uint8)
        hashes[idx] = phash(gray)
    seconds = [s.duration_seconds for s in shots]
    return collector.finish(), seconds, hashes


def score(rows: list[dict], key: str) -> dict:
    truth = [r for r in rows if r["truth_dup"]]
    flagged = [r for r in rows if r[key]]
    right = [r for r in flagged if r[key] == r["truth_dup"]]
    clean = [r for r in rows if r["clean"]]
    setup = [r for r in rows if "same_setup_other_moment" in r["notes"]]
    return {
        "duplicates": len(truth),
        "flagged": len(flagged),
        "precision": len(right) / len(flagged) if flagged else 1.0,
        "recall": len(right) / len(truth) if truth else 1.0,
        "clean_falsely_flagged": sum(bool(r[key]) for r in clean) / max(1, len(clean)),
        "clean_shots": len(clean),
        "same_setup_flagged": sum(bool(r[key]) for r in setup),
        "same_setup_shots": len(setup),
    }


def nearest(registry: DuplicateRegistry, fp: ShotFingerprints) -> list[float]:
    """Each shot's best similarity to every shot registered so far and to its own film's
    earlier shots (0 with no picture). A claim records another film's shot only when it is a
    match; the margin under the threshold is what this benchmark measures, so it is taken here."""
    earlier = registry.index.best(fp.vectors)
    own = own_matches(fp.vectors, fp.valid)
    out = []
    for i, ok in enumerate(fp.valid):
        sims = [m[-1] for m in (earlier[i], own[i]) if m is not None and ok]
        out.append(round(max([0.0, *sims]), 4))
    return out


def run_set(folder: Path, config: DuplicatesConfig, out: Path) -> tuple[list[dict], dict]:
    registry = DuplicateRegistry(str(out), config)
    rows: list[dict] = []
    seen_hashes: list[tuple[str, int, np.ndarray]] = []
    cost = {"fingerprint_s": 0.0, "claim_s": 0.0}
    for doc in load_set(folder):
        film_id = doc["film"].rsplit(".", 1)[0]
        t0 = time.perf_counter()
        fp, seconds, hashes = fingerprint(folder / doc["film"], doc, config)
        t1 = time.perf_counter()
        similarity = nearest(registry, fp)  # before the claim registers the film
        t2 = time.perf_counter()
        result = registry.claim(film_id, fp, seconds)
        cost["fingerprint_s"] += t1 - t0
        cost["claim_s"] += time.perf_counter() - t2
        for i, s in enumerate(doc["shots"]):
            match = result.shot_matches.get(s["index"])
            best, ph = PHASH_MAX_HAMMING + 1, None
            for film, shot, h in seen_hashes:
                d = int(np.count_nonzero(h != hashes[s["index"]]))
                if film != film_id and d < best:
                    best, ph = d, {"film": film + ".mp4", "shot": shot}
            drop = set(s["flags"]) - {"letterbox", "pillarbox", "windowbox"}
            rows.append({
                "film": doc["film"], "shot": s["index"], "truth_dup": s.get("duplicate_of"),
                "kind": s.get("duplicate_kind"), "notes": s.get("notes", []), "clean": not drop,
                "similarity": similarity[i], "valid": bool(fp.valid[i]),
                "ours": {"film": match[0] + ".mp4", "shot": match[1]} if match else None,
                "phash": ph,
            })  # fmt: skip
        seen_hashes += [(film_id, k, h) for k, h in hashes.items()]
    return rows, cost


def whole_film(folder: Path, config: DuplicatesConfig, out: Path, tmp: Path) -> dict:
    """Re-encode cur_plain (another size, crf, brightness), claim it, then again on a registry
    reopened on the same output (a resumed run)."""
    docs = {d["film"]: d for d in load_set(folder)}
    doc = dict(docs["cur_plain.mp4"])
    copy = tmp / "cur_plain_rip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(folder / "cur_plain.mp4"), "-vf",
         "scale=640:360,eq=brightness=-0.04", "-c:v", "libx264", "-crf", "30", str(copy)],
        check=True,
    )  # fmt: skip
    fp, seconds, _ = fingerprint(copy, doc, config)
    fresh = DuplicateRegistry(str(out), config)  # reloads the films the set run claimed
    result = fresh.claim("cur_plain_rip", fp, seconds)
    return {
        "film_duplicate_of": result.film_duplicate_of,
        "shots_matched": len(result.shot_matches),
        "shots": len(fp.shots),
        "min_similarity": min(result.shot_similarity),
        "registered_after": fresh.films(),
    }


def _window(frames: list[np.ndarray], frac: float, where: float | None) -> list[np.ndarray]:
    """A crop ``frac`` of the width at ``where`` (0 left .. 1 right), stretched back to the
    frame; ``where=None`` slides the window from left to right across the shot."""
    out = []
    for i, f in enumerate(frames):
        w = f.shape[1]
        cw = round(w * frac)
        pos = i / max(1, len(frames) - 1) if where is None else where
        x0 = round((w - cw) * pos)
        out.append(cv2.resize(f[:, x0 : x0 + cw], (w, f.shape[0])))
    return out


def _jpeg(f: np.ndarray, quality: int, scale: float) -> np.ndarray:
    small = cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.resize(cv2.imdecode(buf, cv2.IMREAD_COLOR), (f.shape[1], f.shape[0]))


STRESS = {
    "cut 1 frame late": ("shift", 1),
    "cut 2 frames late": ("shift", 2),
    "cut 4 frames late": ("shift", 4),
    "crop 0.75 centre": ("map", lambda fs: _window(fs, 0.75, 0.5)),
    "crop 0.75 at 0.4 (2.5% of W off a view)": ("map", lambda fs: _window(fs, 0.75, 0.4)),
    "crop 0.75 at 1/4": ("map", lambda fs: _window(fs, 0.75, 0.25)),
    "crop 0.75 halfway between two views": ("between", 0.75),
    "crop 0.75 sliding left to right": ("map", lambda fs: _window(fs, 0.75, None)),
    "crop 0.65 centre": ("map", lambda fs: _window(fs, 0.65, 0.5)),
    "crop 0.56 centre (2.39 -> 4:3)": ("map", lambda fs: _window(fs, 0.56, 0.5)),
    "gamma 0.6": ("map", lambda fs: [(255 * (f / 255.0) ** 0.6).astype(np.uint8) for f in fs]),
    "contrast 0.7, +20": (
        "map",
        lambda fs: [cv2.convertScaleAbs(f, alpha=0.7, beta=20) for f in fs],
    ),
    "quarter size, JPEG q20": ("map", lambda fs: [_jpeg(f, 20, 0.25) for f in fs]),
    "mirrored": ("map", lambda fs: [f[:, ::-1] for f in fs]),
}


def stress(folder: Path, config: DuplicatesConfig) -> dict:
    """Similarity of cur_plain's shots to edited copies of themselves (edits made on the
    decoded frames): what the fingerprint survives and what it does not."""
    doc = {d["film"]: d for d in load_set(folder)}["cur_plain.mp4"]
    frames = decode(folder / doc["film"], doc["width"], doc["height"], set(range(doc["n_frames"])))
    shots = [s for s in doc["shots"] if s["content"] in ("clip", "photo")]
    out = {}
    for name, (kind, arg) in STRESS.items():
        sims = []
        for s in shots:
            a, b = s["start_frame"], s["end_frame"]
            base = _fp([frames[i] for i in range(a, b)], config)
            if kind == "shift":
                edited = [frames[min(i + arg, b - 1)] for i in range(a, b)]
            elif kind == "between":  # the worst place for the configured views
                gap = 0.5 / max(1, config.crop_positions - 1)
                edited = _window([frames[i] for i in range(a, b)], arg, gap)
            else:
                edited = arg([frames[i] for i in range(a, b)])
            index = FingerprintIndex(config)
            index.add("orig", np.array([0]), base.vectors)
            hit = index.best(_fp(edited, config).vectors)[0]
            sims.append(hit[2] if hit else 0.0)
        out[name] = {
            "min": round(min(sims), 3),
            "median": round(statistics.median(sims), 3),
            "caught": f"{sum(x >= config.threshold for x in sims)}/{len(sims)}",
        }
    return out


def _fp(frames: list[np.ndarray], config: DuplicatesConfig) -> ShotFingerprints:
    n = len(frames)
    collector = ShotFingerprintCollector([Shot(0, 0, n, 0.0, n / 24, "cut")], config, {0: None})
    for f in collector.wanted()[0]:
        collector.add(Keyframe(0, f, np.ascontiguousarray(frames[f])), True)
    return collector.finish()


def faiss_cost(n: int, config: DuplicatesConfig) -> dict:
    """Median seconds per shot query (all views, one shot at a time as the worst case) with
    ``n`` synthetic shots indexed, and the share of 200 planted copies (an indexed shot plus
    noise, similarity ~0.95) found as the right shot: exact (flat) and inverted file (IVF)."""
    rng = np.random.default_rng(0)
    views, dim = 1 + len(config.crop_widths) * config.crop_positions, 7 * config.dct**2
    chunk = 10_000
    films = []
    for start in range(0, n, chunk):
        v = rng.standard_normal((min(chunk, n - start), views, dim)).astype(np.float32)
        films.append(v / np.linalg.norm(v, axis=2, keepdims=True))
    picks = [(int(rng.integers(len(films))), int(rng.integers(chunk))) for _ in range(200)]
    queries = []
    for f, i in picks:
        q = films[f][i] + 0.015 * rng.standard_normal((views, dim)).astype(np.float32)
        queries.append((q / np.linalg.norm(q, axis=1, keepdims=True))[None])
    out = {"indexed_shots": n, "views": views, "dim": dim}
    for name, ivf_rows in (("flat", 10**12), ("ivf", config.ivf_rows)):
        index = FingerprintIndex(config.model_copy(update={"ivf_rows": ivf_rows}))
        t0 = time.perf_counter()
        for k, v in enumerate(films):
            index.add(f"f{k}", np.arange(len(v)), v)
        build = time.perf_counter() - t0
        times, found, sims = [], 0, []
        for q, (f, i) in zip(queries, picks, strict=True):
            t0 = time.perf_counter()
            hit = index.best(q)[0]
            times.append(time.perf_counter() - t0)
            found += hit is not None and hit[:2] == (f"f{f}", i)
            sims.append(hit[2] if hit else 0.0)
        out[name] = {
            "median_ms_per_shot": round(1000 * statistics.median(times), 2),
            "planted_found": found / len(picks),
            "median_similarity": round(statistics.median(sims), 3),
            "build_s": round(build, 1),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--tmp", type=Path)
    ap.add_argument("--faiss-shots", type=int, default=100_000)
    ap.add_argument("--config", default="{}", help="DuplicatesConfig fields as JSON")
    args = ap.parse_args()
    config = DuplicatesConfig(**json.loads(args.config))
    tmp = args.tmp or Path(tempfile.mkdtemp(prefix="dups-bench-"))
    out = tmp / "out"
    rows, cost = run_set(args.folder, config, out)
    report = {
        "ours": score(rows, "ours"),
        "phash": score(rows, "phash"),
        "cost": cost,
        "dup_similarity": {f"{r['film']}#{r['shot']} ({r['kind']})": r["similarity"]
                           for r in rows if r["truth_dup"]},
        "max_non_dup_similarity": max(r["similarity"] for r in rows if not r["truth_dup"]),
        "same_setup_similarity": [r["similarity"] for r in rows
                                  if "same_setup_other_moment" in r["notes"]],
        "not_fingerprinted": [f"{r['film']}#{r['shot']}" for r in rows if not r["valid"]],
        "whole_film": whole_film(args.folder, config, out, tmp),
    }  # fmt: skip
    report["stress"] = stress(args.folder, config)
    if args.faiss_shots:
        report["faiss"] = faiss_cost(args.faiss_shots, config)
    report["rows"] = rows
    text = json.dumps(report, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1, default=str))


if __name__ == "__main__":
    main()
