"""`muss-builder bench sbd DIR`: scores prediction folders and detectors, writes JSON/Markdown."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from muss_builder.cli import bench_cmd
from muss_builder.shots.transitions import Transition, cut

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    """A local app: the main entry point registers the same function."""
    local = typer.Typer()
    bench_cmd.register(local)

    @local.command()
    def other() -> None:  # a second command keeps `bench` a sub-command, as in the real app
        """Placeholder."""

    return local


def gt_doc(name: str, transitions: list[dict], negatives: list[dict] | None = None) -> dict:
    return {
        "schema_version": "1.0",
        "film": f"{name}.mp4",
        "fps": 24,
        "n_frames": 240,
        "width": 64,
        "height": 36,
        "transitions": transitions,
        "hard_negatives": negatives or [],
        "segments": [],
    }


def c(frame: int) -> dict:
    return {"kind": "cut", "start_frame": frame, "end_frame": frame}


@pytest.fixture
def bench_set(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    root.mkdir()
    flash = [{"kind": "flash", "start_frame": 200, "end_frame": 201}]
    dissolve = {"kind": "dissolve", "start_frame": 100, "end_frame": 111}
    (root / "a.json").write_text(json.dumps(gt_doc("a", [c(50), dissolve], flash)))
    (root / "b.json").write_text(json.dumps(gt_doc("b", [c(30), c(90)])))
    (root / "_summary.json").write_text(json.dumps({"films": 2}))
    return root


def write_predictions(folder: Path, films: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True)
    for name, transitions in films.items():
        (folder / f"{name}.json").write_text(json.dumps({"transitions": transitions}))
    return folder


def row(output: str, name: str) -> list[str]:
    line = next(x for x in output.splitlines() if x.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_scores_prediction_folders(app, bench_set: Path, tmp_path: Path) -> None:
    perfect = write_predictions(
        tmp_path / "perfect",
        {
            "a": [c(50), {"kind": "dissolve", "start_frame": 100, "end_frame": 111}],
            "b": [c(30), c(90)],
        },
    )
    cuts_only = write_predictions(
        tmp_path / "cuts_only", {"a": [c(51), c(105), c(200)], "b": [c(30)]}
    )
    out_json, out_md = tmp_path / "scores.json", tmp_path / "scores.md"
    args = ["bench", "sbd", str(bench_set), "--predictions", str(perfect)]
    args += ["--predictions", str(cuts_only), "--json", str(out_json), "--markdown", str(out_md)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert row(result.stdout, "perfect")[1:4] == ["1.000", "1.000", "1.000"]
    only = row(result.stdout, "cuts_only")
    # cuts: 51 (1 off), 30 found, 90 missed, 200 is on the flash; 105 is the dissolve as a cut
    assert only[1:4] == ["0.333", "0.667", "0.667"]
    assert only[10] == "1/1" and only[12] == "10.00"
    assert out_md.read_text() == result.stdout
    doc = json.loads(out_json.read_text())
    assert doc["films"] == ["a.mp4", "b.mp4"] and doc["tolerances"] == [0, 1, 2]
    cuts_total = doc["results"]["cuts_only"]["total"]
    assert cuts_total["cuts"]["1"] == {
        "tp": 2,
        "fp": 1,
        "fn": 1,
        "precision": pytest.approx(2 / 3, abs=1e-6),
        "recall": pytest.approx(2 / 3, abs=1e-6),
        "f1": pytest.approx(2 / 3, abs=1e-6),
    }
    assert [f["film"] for f in doc["results"]["perfect"]["films"]] == ["a", "b"]


def test_missing_prediction_file_exits_2_naming_it(app, bench_set: Path, tmp_path: Path) -> None:
    preds = write_predictions(tmp_path / "p", {"a": []})
    result = runner.invoke(app, ["bench", "sbd", str(bench_set), "--predictions", str(preds)])
    assert result.exit_code == 2
    assert "b.json" in result.output and "no predictions" in result.output


def test_invalid_ground_truth_exits_2_naming_it(app, bench_set: Path, tmp_path: Path) -> None:
    (bench_set / "c.json").write_text(json.dumps({"film": "c.mp4"}))
    preds = write_predictions(tmp_path / "p", {"a": [], "b": [], "c": []})
    result = runner.invoke(app, ["bench", "sbd", str(bench_set), "--predictions", str(preds)])
    assert result.exit_code == 2
    assert "c.json: invalid ground truth" in result.output and "n_frames" in result.output


@dataclass
class FakeRun:
    transitions: list[Transition]
    seconds: float


def test_detectors_share_one_call_per_film(
    app, bench_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--detector runs shots.segment.run_detectors once per film with every name; the rows
    carry each detector's own seconds; --save-predictions writes what --predictions reads."""
    import muss_builder.shots.segment as segment

    calls: list[tuple[str, list[str]]] = []

    def fake_run_detectors(path: Path, names: list[str]) -> dict[str, FakeRun]:
        calls.append((path.name, list(names)))
        truth = {"a.mp4": [cut(50), Transition(100, 111, "dissolve")], "b.mp4": [cut(30)]}
        return {
            "muss": FakeRun(truth[path.name], 1.5),
            "adaptive": FakeRun([cut(52)], 0.5),
        }

    monkeypatch.setattr(segment, "run_detectors", fake_run_detectors, raising=False)
    for name in ("a", "b"):
        (bench_set / f"{name}.mp4").write_bytes(b"")
    saved = tmp_path / "saved"
    args = ["bench", "sbd", str(bench_set), "-d", "muss", "--detector", "adaptive"]
    result = runner.invoke(app, [*args, "--save-predictions", str(saved)])
    assert result.exit_code == 0, result.output
    assert calls == [("a.mp4", ["muss", "adaptive"]), ("b.mp4", ["muss", "adaptive"])]
    muss = row(result.stdout, "muss")
    assert muss[2] == "0.800" and muss[-2:] == ["3.0", "160"]  # 480 frames in 3.0 s
    assert row(result.stdout, "adaptive")[-2:] == ["1.0", "480"]
    rescored = runner.invoke(
        app, ["bench", "sbd", str(bench_set), "--predictions", str(saved / "muss")]
    )
    assert rescored.exit_code == 0, rescored.output
    assert row(rescored.stdout, "muss")[1:15] == muss[1:15]


def test_default_detector_is_muss(app, bench_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import muss_builder.shots.segment as segment

    seen: list[list[str]] = []

    def fake_run_detectors(path: Path, names: list[str]) -> dict[str, FakeRun]:
        seen.append(names)
        return {"muss": FakeRun([], 0.1)}

    monkeypatch.setattr(segment, "run_detectors", fake_run_detectors, raising=False)
    for name in ("a", "b"):
        (bench_set / f"{name}.mp4").write_bytes(b"")
    result = runner.invoke(app, ["bench", "sbd", str(bench_set)])
    assert result.exit_code == 0, result.output
    assert seen == [["muss"], ["muss"]]


def test_missing_film_for_a_detector_exits_2(app, bench_set: Path) -> None:
    result = runner.invoke(app, ["bench", "sbd", str(bench_set), "-d", "adaptive"])
    assert result.exit_code == 2
    assert "a.mp4" in result.output and "not found" in result.output
