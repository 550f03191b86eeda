"""run_suite on a real build: results.json/results.md with every metric key, and transition
deviation that tells the real clips from the same clips with their cuts moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from muss_builder.bench.metrics import METRIC_KEYS, BenchModelsConfig, MetricModels, read_video
from muss_builder.bench.metrics import load_bench_models as load_models
from muss_builder.bench.perturb import make_variants
from muss_builder.bench.runner import SuiteResults, _real_clip, run_suite, summarise
from muss_builder.bench.suite import Suite, SuiteError, make_suite
from muss_builder.runtime.build import BuildSummary

pytestmark = pytest.mark.slow
Scored = tuple[SuiteResults, SuiteResults, Path]  # real, moved cuts, output folder


@pytest.fixture(scope="module")
def models() -> MetricModels:
    # no face pack: the montage clips show no faces, and it saves the detector's time
    return load_models(BenchModelsConfig(face_pack=None))


@pytest.fixture(scope="module")
def suite(built_dataset: BuildSummary, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_suite(
        built_dataset.out, tmp_path_factory.mktemp("runner") / "suite", n_scripts=2,
        holdout_fraction=1.0, seed=2,
    )  # fmt: skip


@pytest.fixture(scope="module")
def scored(suite: Suite, models: MetricModels, tmp_path_factory: pytest.TempPathFactory) -> Scored:
    out = tmp_path_factory.mktemp("runner-out")
    moved = make_variants(suite.root, out / "variants", ("moved_cuts",), d=5)["moved_cuts"]
    real = run_suite(suite.root, suite.root / "real", models, out / "real")
    broken = run_suite(suite.root, moved, models, out / "moved")
    return real, broken, out


def test_results_files_hold_every_metric(scored: Scored, suite: Suite) -> None:
    _, _, out = scored
    doc = json.loads((out / "real" / "results.json").read_text())
    assert set(doc["metrics"]) == set(METRIC_KEYS)
    assert doc["n_videos"] == len(suite.scripts) == len(doc["per_video"])
    for video in doc["per_video"]:
        assert set(video["metrics"]) == set(METRIC_KEYS)
        assert video["n_frames"] == next(s.n_frames for s in suite.scripts if s.key == video["key"])
    for key, summary in doc["metrics"].items():
        values = [v["metrics"][key] for v in doc["per_video"] if v["metrics"][key] is not None]
        assert summary["count"] == len(values)
        assert summary["count"] + summary["missing"] == len(suite.scripts)
        if values:
            assert summary["mean"] == pytest.approx(sum(values) / len(values))
        else:  # a metric without a value says why (no references, no judge here)
            assert summary["mean"] is None and summary["notes"], key
    table = (out / "real" / "results.md").read_text()
    assert all(f"| {key} " in table for key in METRIC_KEYS)
    assert doc["metrics"]["acp_var"]["notes"] == ["the script has no references"]


def test_transition_deviation_separates_real_from_moved_cuts(scored: Scored) -> None:
    real, broken, _ = scored
    assert real.mean("transition_deviation") is not None
    assert real.mean("transition_deviation") <= 1.0
    assert broken.mean("transition_deviation") >= 4.0
    for a, b in zip(real.per_video, broken.per_video, strict=True):
        assert b["metrics"]["transition_deviation"] > a["metrics"]["transition_deviation"]
    assert broken.mean("shot_cut_accuracy") < real.mean("shot_cut_accuracy")


def test_missing_videos_are_an_error_unless_allowed(
    suite: Suite, models: MetricModels, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    first, second = suite.scripts[:2]
    with pytest.raises(SuiteError, match="none of the suite"):
        run_suite(suite.root, videos, models, tmp_path / "r", allow_missing=True)
    shutil.copy(suite.real_video(first.key), videos / f"{first.key}.mp4")
    with pytest.raises(SuiteError, match=f"1 of 2 videos missing: {second.key}"):
        run_suite(suite.root, videos, models, tmp_path / "r")
    with pytest.raises(SuiteError, match="no such folder"):
        run_suite(suite.root, tmp_path / "nope", models, tmp_path / "r")


def test_the_real_clip_is_decoded_once_when_it_is_the_scored_video(
    suite: Suite, tmp_path: Path
) -> None:
    key = suite.scripts[0].key
    real = suite.real_video(key)
    decoded = read_video(real)[0]
    # scoring the real baseline: the scored video's frames are the target, not decoded again
    spelled_otherwise = suite.root / "real" / ".." / "real" / real.name
    assert _real_clip(suite, key, spelled_otherwise, decoded) is decoded
    # any other video (here an equal copy) gets the real clip decoded from the suite
    shutil.copy(real, tmp_path / real.name)
    other = _real_clip(suite, key, tmp_path / real.name, decoded)
    assert other is not decoded and np.array_equal(other, decoded)
    assert _real_clip(suite, "absent", real, decoded) is None


def test_summary_counts_only_videos_with_a_value() -> None:
    rows = [
        {"metrics": {"a": 1.0, "b": None}, "notes": {"b": "why"}},
        {"metrics": {"a": 3.0, "b": 2.0}, "notes": {}},
    ]
    summary = summarise(rows, ["a", "b"])
    assert (summary["a"].mean, summary["a"].count, summary["a"].missing) == (2.0, 2, 0)
    assert (summary["b"].mean, summary["b"].count, summary["b"].missing) == (2.0, 1, 1)
    assert summary["b"].notes == ["why"] and summary["a"].std == pytest.approx(1.0)
