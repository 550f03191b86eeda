"""`muss-builder build` from the command line: progress, summary, exit codes, resume."""

from __future__ import annotations

from typer.testing import CliRunner

from muss_builder.cli.main import app

runner = CliRunner()


def test_build_then_rerun_resumes(tmp_path, twelve_film) -> None:
    out = tmp_path / "out"
    args = [
        "build",
        str(twelve_film.path),
        "--out",
        str(out),
        "--config",
        "tiny",
        "--executor",
        "inline",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "twelve.mp4" in first.output and "ok" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0
    assert "(resumed)" in second.output
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0


def test_build_of_only_bad_films_exits_1(tmp_path) -> None:
    result = runner.invoke(
        app,
        [
            "build",
            str(tmp_path / "missing.mp4"),
            "--out",
            str(tmp_path / "out"),
            "--executor",
            "inline",
        ],
    )
    assert result.exit_code == 1
    assert "file not found" in result.output


def test_build_shows_stages_live_and_at_the_end(tmp_path, twelve_film) -> None:
    """The live view has a line per stage, and the end of the run a table with busy shares."""
    out = tmp_path / "out"
    args = ["build", str(twelve_film.path), "--out", str(out), "--config", "tiny"]
    result = runner.invoke(app, [*args, "--executor", "inline"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for stage in ("analyse", "subjects", "curate", "captions", "clips", "shards"):
        assert f"{stage}" in result.output
    assert "queued" in result.output and "running" in result.output  # the live lines
    assert "busy share" in result.output and "film-hours per wall-hour" in result.output


def test_a_gpu_stage_on_a_cluster_without_gpus_is_a_clear_error(tmp_path, twelve_film) -> None:
    config = tmp_path / "gpu.yaml"
    config.write_text("name: gpu\nruntime:\n  stages:\n    subjects: {num_gpus: 0.5}\n")
    args = ["build", str(twelve_film.path), "--out", str(tmp_path / "out"), "-c", str(config)]
    result = runner.invoke(app, [*args, "--executor", "ray", "--num-cpus", "1"])
    assert result.exit_code == 2
    assert "subjects asks for 0.5 GPU" in result.output and "cluster has none" in result.output
