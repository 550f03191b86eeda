"""`muss-builder bench make-suite / perturb / run`: the suite from a real build, scored from the
command line, and every bad input an `error: ...` with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from muss_builder.cli import bench_cmd
from muss_builder.runtime.build import BuildSummary

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    local = typer.Typer()
    bench_cmd.register(local)

    @local.command()
    def other() -> None:  # a second command keeps `bench` a sub-command, as in the real app
        """Placeholder."""

    return local


@pytest.fixture(scope="module")
def suite_dir(
    app: typer.Typer, built_dataset: BuildSummary, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("cli-suite") / "suite"
    args = ["bench", "make-suite", str(built_dataset.out), "--out", str(out)]
    result = runner.invoke(app, [*args, "--n-scripts", "1", "--holdout-fraction", "1.0"])
    assert result.exit_code == 0, result.output
    assert "1 scripts" in result.output and "holdout.film_ids" in result.output
    return out


def test_make_suite_writes_a_suite(suite_dir: Path) -> None:
    doc = json.loads((suite_dir / "suite.json").read_text())
    assert doc["n_scripts"] == 1 and len(doc["scripts"]) == 1
    key = doc["scripts"][0]["key"]
    assert (suite_dir / "real" / f"{key}.mp4").is_file()
    assert doc["holdout"]["film_ids"] and doc["holdout"]["fraction"] == 1.0


@pytest.mark.slow
def test_run_scores_videos_and_prints_the_table(
    app: typer.Typer, suite_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("face_pack: null\n")
    moved = tmp_path / "variants"
    result = runner.invoke(
        app, ["bench", "perturb", "--suite", str(suite_dir), "--out", str(moved),
              "--variant", "moved_cuts", "--d", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "results"
    args = ["bench", "run", "--suite", str(suite_dir), "--out", str(out), "--models", str(models)]
    result = runner.invoke(app, [*args, "--videos", str(moved / "moved_cuts")])
    assert result.exit_code == 0, result.output
    assert "| transition_deviation ↓ | 5.000 |" in result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["n_videos"] == 1 and doc["metrics"]["transition_deviation"]["mean"] == 5.0
    assert (out / "results.md").read_text() in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--videos", "V", "--ckpt", "C"], "give exactly one of --videos DIR or --ckpt CKPT"),
        ([], "give exactly one of --videos DIR or --ckpt CKPT"),
        (["--videos", "NOPE"], "NOPE: no such folder of videos"),
        (["--ckpt", "NOPE"], "NOPE: no such checkpoint"),
    ],
)
def test_run_refuses_bad_sources(
    app: typer.Typer, suite_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "V").mkdir()
    (tmp_path / "C").mkdir()
    full = [str(tmp_path / a) if a in ("V", "C", "NOPE") else a for a in args]
    result = runner.invoke(
        app, ["bench", "run", "--suite", str(suite_dir), "--out", str(tmp_path / "o"), *full]
    )
    assert result.exit_code == 2
    assert f"error: {message.replace('NOPE', str(tmp_path / 'NOPE'))}" in result.output


def test_run_refuses_a_bad_models_config(app: typer.Typer, suite_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text("face_pak: offline\n")
    args = ["bench", "run", "--suite", str(suite_dir), "--videos", str(suite_dir / "real")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--models", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.output and "face_pak" in result.output
    bad.write_text("- a list\n")
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--models", str(bad)])
    assert result.exit_code == 2 and "must be a mapping" in result.output


def test_run_refuses_a_checkpoint_folder_without_a_checkpoint(
    app: typer.Typer, suite_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "run"
    empty.mkdir()
    args = ["bench", "run", "--suite", str(suite_dir), "--ckpt", str(empty)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "error:" in result.output
    assert not (tmp_path / "o" / "results.json").exists()


def test_make_suite_and_run_refuse_folders_that_are_not_theirs(
    app: typer.Typer, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["bench", "make-suite", str(tmp_path), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 2 and "no index.parquet" in result.output
    (tmp_path / "v").mkdir()
    args = ["bench", "run", "--suite", str(tmp_path), "--videos", str(tmp_path / "v")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "cannot read a suite" in result.output
    result = runner.invoke(
        app, ["bench", "perturb", "--suite", str(tmp_path), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 2 and "error:" in result.output
