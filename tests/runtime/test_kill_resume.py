"""A build killed with SIGKILL mid-run, then rerun, equals an uninterrupted build."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.runtime.build import BuildSummary, build

_DRIVER = """
import sys
from muss_builder.config import load_pipeline
from muss_builder.runtime.build import build
build(sys.argv[3:], sys.argv[1], load_pipeline("tiny"), executor=sys.argv[2], num_cpus=2)
"""


@pytest.fixture(scope="module")
def shelf(six_reels) -> list[str]:
    """Six films of ~280 frames at 640x360 (tests/runtime/conftest.py)."""
    return six_reels


@pytest.fixture(scope="module")
def clean(tmp_path_factory, shelf, tiny_config, six_reels_clean_runs) -> BuildSummary:
    """The uninterrupted run both executors' killed runs must equal (the tiny pipeline,
    inline): the one the cluster-fault test made, else built here, once for the module.
    Tests must not modify it."""
    if not six_reels_clean_runs:
        out = tmp_path_factory.mktemp("clean")
        six_reels_clean_runs.append(build(shelf, out, tiny_config, executor="inline"))
    return six_reels_clean_runs[0]


def _kill_after_first_film(out: Path, executor: str, films: list[str]) -> int:
    """Start a build in its own session, SIGKILL the whole group once a film is complete."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(out), executor, *films],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if list((out / "films").glob("*.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and, for Ray, its local cluster
    proc.wait()
    return len(list((out / "films").glob("*.json")))


@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_sigkill_then_rerun_equals_clean_run(tmp_path, shelf, clean, tiny_config, executor) -> None:
    out = tmp_path / "killed"
    done = _kill_after_first_film(out, executor, shelf)
    assert 1 <= done < len(shelf)
    # nothing half-written is visible under a final name
    for shard in (out / "shards").glob("*.tar"):
        assert shard.stat().st_size % 512 == 0
    rerun = build(shelf, out, tiny_config, executor="inline")
    assert sum(r.resumed for r in rerun.results) >= 1
    assert not list((out / "shards").glob(".*"))
    clean_shards = {p.name: p.read_bytes() for p in (clean.out / "shards").glob("*.tar")}
    assert {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")} == clean_shards
    assert (
        pq.read_table(out / "index.parquet").to_pylist()
        == pq.read_table(clean.out / "index.parquet").to_pylist()
    )
