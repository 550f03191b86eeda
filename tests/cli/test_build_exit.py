"""`muss-builder build` exit codes and one-line messages for an output it cannot use, a second
build into the same folder, a full disk and a read-only folder (real ones, where a private
mount namespace can make them)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.runtime.build import Progress, build
from muss_builder.testing.synthetic_films import make_film

runner = CliRunner()
CLI = [sys.executable, "-m", "muss_builder.cli.main"]


@pytest.fixture(scope="module")
def reels(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("exit_reels")
    return [
        make_film(root / f"reel{i}.mp4", (30 + i, 26, 34, 28), fps=24, width=480, height=270).path
        for i in range(3)
    ]


def _args(films: list[Path | str], out: Path | str) -> list[str]:
    return ["build", *map(str, films), "--out", str(out), "-c", "tiny", "--executor", "inline"]


def _one_clear_line(output: str) -> None:
    assert "Traceback" not in output and 'File "' not in output, output


def test_some_films_failed_exits_3_unless_allowed(tmp_path, reels) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    args = _args([reels[0], empty], tmp_path / "out")
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert runner.invoke(app, [*args, "--allow-failures"]).exit_code == 0
    help_text = runner.invoke(app, ["build", "--help"], terminal_width=200).output
    assert "3 some films failed" in help_text and "--allow-failures" in help_text


def test_an_out_that_is_a_file_is_one_clear_line(tmp_path, reels) -> None:
    out = tmp_path / "dataset"
    out.write_text("not a folder")
    result = runner.invoke(app, _args([reels[0]], out))
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output
    _one_clear_line(result.output)
    assert out.read_text() == "not a folder"


def test_missing_inputs_are_reported_before_ray_starts(tmp_path) -> None:
    import ray

    seen: list[tuple[str, bool]] = []
    progress = Progress(on_film=lambda r, _: seen.append((r.reason or "", ray.is_initialized())))
    summary = build(
        [str(tmp_path / "missing.mp4")],
        tmp_path / "out",
        _tiny(),
        executor="ray",
        progress=progress,
    )
    assert summary.count("failed") == 1
    assert seen == [(f"file not found: {tmp_path / 'missing.mp4'}", False)]


def _tiny():
    from muss_builder.config import load_pipeline

    return load_pipeline("tiny")


def _wait_for(predicate, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_build_into_one_out_is_refused_and_nothing_is_lost(tmp_path, reels) -> None:
    out = tmp_path / "out"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(
        [*CLI, *_args(reels, out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    lock = out / ".lock"

    def held() -> bool:
        try:
            return json.loads(lock.read_text())["pid"] == first.pid
        except (OSError, ValueError):
            return False

    _wait_for(held)
    second = subprocess.run(
        [*CLI, *_args(reels[::-1], out)], env=env, capture_output=True, text=True, timeout=120
    )
    running = first.poll() is None
    assert first.wait(timeout=300) == 0, first.stderr.read().decode()
    assert running, "the first build ended before the second started: no overlap was tested"
    assert second.returncode == 2, second.stderr
    assert "another build is writing to" in second.stderr and f"pid {first.pid}" in second.stderr
    _one_clear_line(second.stderr)
    rows = pq.read_table(out / "films.parquet").to_pylist()
    assert sorted(r["status"] for r in rows) == ["ok"] * len(reels)
    records = list((out / "films").glob("*.json"))
    assert len(records) == len(reels)
    for record in records:
        for shard in json.loads(record.read_text())["shards"]:
            assert (out / "shards" / shard["name"]).stat().st_size == shard["size_bytes"]
    assert not lock.exists()  # released at the end


def test_a_dead_builds_lock_is_taken_over_with_a_note(tmp_path, reels) -> None:
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    pid = int(gone.stdout)
    (out / ".lock").write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
    result = runner.invoke(app, _args([reels[0]], out))
    assert result.exit_code == 0, result.output
    assert f"took over the lock of a build that is gone (pid {pid}" in result.output


_NAMESPACE_DRIVER = r"""
import json, os, subprocess, sys
out, films = sys.argv[1], sys.argv[2:]
cli = [sys.executable, "-m", "muss_builder.cli.main", "build", "-c", "tiny", "--executor", "inline"]
def mount(*args):
    subprocess.run(["mount", *args], check=True)
def build(paths):
    p = subprocess.run([*cli, *paths, "--out", out], capture_output=True, text=True)
    return {"rc": p.returncode, "err": p.stderr}
def listing():
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
report = {}
mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", out)
report["first"] = build(films[:1])
before = {f: open(os.path.join(out, f), "rb").read() for f in listing() if f.startswith("shards/")}
stat = os.statvfs(out)
with open(os.path.join(out, "filler"), "wb") as fh:  # leave 24 KiB: less than a film's shards
    fh.write(b"\0" * (stat.f_bavail * stat.f_frsize - 24 * 1024))
report["full"] = build(films)
report["kept"] = all(open(os.path.join(out, f), "rb").read() == b for f, b in before.items())
os.unlink(os.path.join(out, "filler"))
mount("-o", "remount,ro", out)
report["read_only"] = build(films)
mount("-o", "remount,rw", out)
report["rerun"] = build(films)
report["listing"] = listing()
print(json.dumps(report))
"""


def _private_mounts() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _private_mounts(), reason="needs user and mount namespaces (unshare)")
def test_a_full_disk_and_a_read_only_out_stop_with_one_line(tmp_path, reels) -> None:
    """A real 4 MiB tmpfs, filled, then remounted read-only, in a private mount namespace."""
    out = tmp_path / "mnt"
    out.mkdir()
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    command = ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c"]
    proc = subprocess.run(
        [*command, _NAMESPACE_DRIVER, str(out), *map(str, reels)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["first"]["rc"] == 0, report["first"]["err"]
    full, read_only = report["full"], report["read_only"]
    assert full["rc"] == 4 and "build stopped: no space left on device" in full["err"], full
    assert "finished films are kept" in full["err"]
    assert report["kept"]
    assert read_only["rc"] == 2 and "Read-only file system" in read_only["err"], read_only
    for result in (full, read_only):
        _one_clear_line(result["err"])
    assert report["rerun"]["rc"] == 0, report["rerun"]["err"]  # resumes once there is room
    assert sum(f.startswith("films/") for f in report["listing"]) == len(reels)
    assert not [f for f in report["listing"] if "/." in f or f.startswith(".")]


def test_ctrl_c_stops_with_one_line_and_a_rerun_resumes(tmp_path, reels) -> None:
    out = tmp_path / "out"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    build_cmd = [*CLI, *_args(reels, out)]
    proc = subprocess.Popen(build_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: bool(list((out / "films").glob("*.json"))) or proc.poll() is not None)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 130, err
    assert "interrupted: finished films are kept" in err
    _one_clear_line(err)
    assert not (out / ".lock").exists()
    rerun = subprocess.run(build_cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "(resumed)" in rerun.stderr


def test_a_bad_config_exits_2_with_one_line(tmp_path, reels) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsamples: {min_shots: lots}\n")
    for config, words in ((str(tmp_path / "none.yaml"), "not found"), (str(bad), "min_shots")):
        args = ["build", str(reels[0]), "--out", str(tmp_path / "out"), "-c", config]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "cannot run this build: bad --config" in result.output and words in result.output
        _one_clear_line(result.output)
    assert not (tmp_path / "out").exists()  # nothing was started


def test_a_model_that_cannot_load_exits_2_before_any_film(tmp_path, reels) -> None:
    import yaml

    from muss_builder.config import resource_dir

    config = yaml.safe_load((resource_dir("pipelines") / "tiny.yaml").read_text())
    config["subjects"]["faces"] = {"pack": str(tmp_path / "no-such-pack")}
    path = tmp_path / "bad-pack.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    args = ["build", *map(str, reels), "--out", str(out), "-c", str(path), "--executor", "inline"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    said = "cannot run this build: stage subjects cannot start: ModelNotFoundError: face model pack"
    assert result.output.count(said) == 1, result.output  # once, not once per film
    assert "no-such-pack" in result.output
    assert "failed" not in result.output  # no film row
    _one_clear_line(result.output)
    assert not (out / "films.parquet").exists() and not list((out / "films").glob("*.json"))
