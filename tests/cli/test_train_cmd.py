"""``muss-builder train cache|fit|sample`` end to end on pipeline shards, and every way a
user can get it wrong: ``error: ...`` and exit status 2, naming the culprit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from muss_builder.cli.main import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(*args: str):
    return runner.invoke(app, ["train", *args])


@pytest.mark.slow
def test_cache_fit_sample_from_the_command_line(built_dataset, tmp_path: Path) -> None:
    shards = str(built_dataset.out / "shards")
    cache = tmp_path / "cache"
    done = run("cache", "--config", "tiny", "--shards", shards, "--out", str(cache))
    assert done.exit_code == 0, done.output
    assert "cached 5 samples in 2 shards" in done.output
    assert json.loads((cache / "cache.json").read_text())["vae"].startswith(str(cache))
    out = tmp_path / "run"
    args = ["--latent-cache", str(cache), "--out", str(out), "--set", "checkpoint_every=2"]
    done = run("fit", "--config", "pipelines/train-tiny.yaml", *args, "--until-step", "2")
    assert done.exit_code == 0, done.output
    assert "trained steps 0..2" in done.output
    done = run("fit", "--config", "tiny", *args, "--until-step", "3", "--resume")
    assert done.exit_code == 0, done.output
    assert "trained steps 2..3" in done.output
    script = {
        "key": "s",
        "global_caption": "a street",
        "fps": 24,
        "width": 32,
        "height": 32,
        "shots": [{"caption": "cars", "n_frames": 6}, {"caption": "people", "n_frames": 5}],
    }
    (tmp_path / "script.json").write_text(json.dumps(script))
    video = tmp_path / "video.mp4"
    done = run("sample", "--ckpt", str(out), "--script", str(tmp_path / "script.json"),
               "--out", str(video), "--steps", "2")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "cuts at [6]" in done.output and "step-00000003" in done.output
    cuts = json.loads((tmp_path / "video.cuts.json").read_text())
    assert cuts["n_frames"] == 11 and cuts["cut_frames"] == [6] and video.stat().st_size > 0

    # the benchmark generates its suite's videos with the same checkpoint, then scores them
    suite = tmp_path / "suite"
    done = runner.invoke(app, ["bench", "make-suite", str(built_dataset.out), "--out", str(suite),
                               "--n-scripts", "1", "--holdout-fraction", "1.0"])  # fmt: skip
    assert done.exit_code == 0, done.output
    (tmp_path / "models.yaml").write_text("face_pack: null\n")
    results = tmp_path / "results"
    done = runner.invoke(app, ["bench", "run", "--suite", str(suite), "--ckpt", str(out),
                               "--out", str(results), "--steps", "2",
                               "--models", str(tmp_path / "models.yaml")])  # fmt: skip
    assert done.exit_code == 0, done.output
    scripts = json.loads((suite / "suite.json").read_text())["scripts"]
    generated = json.loads((results / "videos" / f"{scripts[0]['key']}.cuts.json").read_text())
    assert generated["n_frames"] == sum(shot["n_frames"] for shot in scripts[0]["shots"])
    scored = json.loads((results / "results.json").read_text())
    assert scored["n_videos"] == 1 and scored["metrics"]["shot_cut_accuracy"]["count"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--config", "nope", "--shards", "x"], "train config not found: nope"),
        (["fit", "--set", "optim.lr=-1", "--shards", "x"], "optim.lr"),
        (["fit", "--set", "optim.lrr=1", "--shards", "x"], "optim.lrr"),
        (["fit", "--set", "model.preset=huge", "--shards", "x"], "unknown model preset 'huge'"),
        (["fit", "--set", "data.fps=0", "--shards", "x"], "data"),
        (["fit", "--set", "rope.mode=sideways", "--shards", "x"], "rope"),
        (["fit", "--set", "nonsense"], "expected KEY=VALUE"),
        (["fit", "--config", "tiny"], "no data: pass --shards"),
        (["cache", "--out", "c"], "no shards"),
        (["cache", "--shards", "x", "--out", "c", "--dtype", "int8"], "--dtype 'int8'"),
        (["sample", "--ckpt", ".", "--script", "s.json", "--out", "v.avi"], "must end in .mp4"),
    ],
)
def test_bad_arguments_exit_2_naming_them(args: list[str], message: str) -> None:
    done = run(*args)
    assert done.exit_code == 2, done.output
    assert "error:" in done.output and message in done.output


def test_missing_inputs_exit_2(tmp_path: Path) -> None:
    done = run("fit", "--shards", str(tmp_path / "none-*.tar"), "--out", str(tmp_path / "o"))
    assert done.exit_code == 2 and "nothing matches" in done.output
    script = tmp_path / "script.json"
    sample = ["sample", "--ckpt", str(tmp_path), "--script", str(script), "--out", "v.mp4"]
    script.write_text(json.dumps({"key": "s", "shots": []}))
    done = run(*sample)
    assert done.exit_code == 2 and "script.json: no shots" in done.output
    script.write_text(json.dumps({"key": "s", "shots": [{"caption": "a", "n_frames": 5}]}))
    done = run(*sample)
    assert done.exit_code == 2 and "no complete checkpoint" in done.output
    done = run("fit", "--latent-cache", str(tmp_path), "--out", str(tmp_path / "o"))
    assert done.exit_code == 2 and "no cache.json" in done.output


@pytest.mark.slow
def test_holdout_suite_keeps_its_films_out_of_cache_and_fit(built_dataset, tmp_path: Path) -> None:
    from muss_builder.bench.suite import make_suite

    shards = built_dataset.out / "shards"
    one = make_suite(built_dataset.out, tmp_path / "one", n_scripts=1, holdout_fraction=1e-6)
    (held,) = one.held_out
    cache = tmp_path / "cache"
    args = ["--shards", str(shards), "--out", str(cache), "--holdout", str(one.root)]
    done = run("cache", "--config", "tiny", *args, "--set", "data.exclude_film_ids=[]")
    assert done.exit_code == 0, done.output
    others = [p.name for p in shards.glob("*.tar") if not p.name.startswith(held)]
    assert f"in {len(others)} shards" in done.output
    assert sorted(p.name for p in (cache / "shards").glob("*.tar")) == sorted(others)
    manifest = json.loads((cache / "cache.json").read_text())
    assert manifest["data_config"]["exclude_film_ids"] == [held]
    # fit: a suite holding out every film leaves nothing to train on, and says so
    every = make_suite(built_dataset.out, tmp_path / "all", n_scripts=1, holdout_fraction=1.0)
    assert len(every.held_out) == 2
    fit = ["fit", "--shards", str(shards), "--out", str(tmp_path / "run"), "--until-step", "1"]
    done = run(*fit, "--holdout", str(every.root))
    assert done.exit_code == 2 and "excluded film(s): nothing is left to read" in done.output
    done = run(*fit, "--holdout", str(tmp_path / "no-suite"))
    assert done.exit_code == 2 and "--holdout:" in done.output and "suite.json" in done.output


def test_ctrl_c_names_the_checkpoint_to_resume_from(
    built_dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muss_builder.train import loop

    step = loop.train_step
    calls = []

    def interrupted_at_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", interrupted_at_the_second)
    out = tmp_path / "run"
    args = ["--shards", str(built_dataset.out / "shards"), "--out", str(out)]
    args += ["--set", "checkpoint_every=1", "--until-step", "3"]
    done = run("fit", "--config", "tiny", *args)
    assert done.exit_code == 130, done.output
    assert "interrupted: the newest checkpoint is" in done.output
    assert "step-00000001" in done.output and "--resume" in done.output
    monkeypatch.setattr(loop, "train_step", step)
    done = run("fit", "--config", "tiny", *args, "--resume")
    assert done.exit_code == 0, done.output
    assert "trained steps 1..3" in done.output
