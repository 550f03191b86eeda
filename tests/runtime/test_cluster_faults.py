"""A build on a 3-node Ray cluster survives a worker node killed mid-run: its output equals
a clean run's.

The cluster is one head (no CPUs) and two 1-CPU worker nodes on this machine, each a
``ray start --block`` in a process group of its own. Removing a node is a SIGKILL of its
raylet, agents and task workers (the raylet puts each worker in a process group of its own,
so they are found as its descendants), and teardown checks that none of them is left.

Why not ``ray.cluster_utils.Cluster`` with every node on 127.0.0.1: such a cluster listens on
loopback only, and ``ray.init(address="127.0.0.1:port")`` rewrites a loopback address to this
machine's outward IP unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` was in the environment
before ``ray`` was first imported. RayExecutor sets it when it starts, too late once anything
in the process has imported ray (as a test using Cluster must), and the driver then retries an
unreachable GCS for many minutes. Cluster also starts its nodes inside the pytest process and
cannot add a node from a thread. Here the head binds to the address Ray picks for this machine
and the driver is given the address the head wrote, so nothing depends on import order or on
what earlier tests left in the process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.runtime.build import Progress, build
from muss_builder.runtime.streaming import MAX_REFUSALS

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc"),
]

N_FILMS = 6
_START_TIMEOUT_S = 90
_OBJECT_STORE_BYTES = 150 * 1024 * 1024  # as ray.cluster_utils; Ray's default is 30% of RAM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid -> (parent pid, process group, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]  # the fields after "(comm)"
        if state not in ("Z", "X"):
            title = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            table[int(entry.name)] = (int(ppid), int(pgrp), title)
    return table


def _node_processes(leader: int) -> dict[int, str]:
    """The processes of the node started as ``leader``: its process group and every
    descendant (the raylet starts each task worker in a process group of its own)."""
    table = _processes()
    found = {pid for pid, (_, pgrp, _) in table.items() if pgrp == leader}
    grown = True
    while grown:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in found} - found
        found |= more
        grown = bool(more)
    return {pid: table[pid][2] for pid in found}


class LocalCluster:
    """Ray nodes on this machine, each a ``ray start --block`` in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: dict[str, subprocess.Popen] = {}
        self.address: str | None = None
        # Ray's own defaults for a cluster, whatever earlier tests put in os.environ:
        # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes `ray start --address` refuse to join.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS")
        }
        self.env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
        # A killed task leaves its work folder behind: let it be one that teardown removes.
        (root / "tmp").mkdir()
        self.env["TMPDIR"] = str(root / "tmp")

    def _start(self, name: str, *args: str) -> None:
        command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block"]
        command += ["--disable-usage-stats", "--temp-dir", str(self.root / name)]
        command += ["--object-store-memory", str(_OBJECT_STORE_BYTES), *args]
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - the node outlives this call
        self.nodes[name] = subprocess.Popen(
            command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def start_head(self) -> str:
        self._start("head", "--head", "--port", str(_free_port()), "--num-cpus", "0")
        address_file = self.root / "head" / "ray_current_cluster"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not (address_file.is_file() and address_file.read_text().strip()):
            if self.nodes["head"].poll() is not None or time.monotonic() > deadline:
                pytest.fail("the head did not start:\n" + self.log("head"))
            time.sleep(0.1)
        self.address = address_file.read_text().strip()
        return self.address

    def add_worker(self, name: str) -> None:
        self._start(name, "--address", self.address, "--num-cpus", "1")

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def workers_running(self, task: str) -> list[str]:
        """The worker nodes on which a Ray task named ``task`` is executing now."""
        return [
            name
            for name, proc in self.nodes.items()
            if name != "head"
            and proc.poll() is None
            and any(t.startswith(f"ray::{task}") for t in _node_processes(proc.pid).values())
        ]

    def kill(self, name: str) -> None:
        """Remove a node the hard way: SIGKILL its raylet, task workers, agents and their
        children. The group is stopped first so that no worker is started in between."""
        proc = self.nodes[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGSTOP)
        doomed = _node_processes(proc.pid)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while True:
            alive = _processes()
            left = {pid: title for pid, title in doomed.items() if pid in alive}
            if not left:
                return
            assert time.monotonic() < deadline, f"processes of {name} left behind: {left}"
            time.sleep(0.05)

    def stop(self) -> None:
        errors = []
        for name in self.nodes:
            try:
                self.kill(name)
            except AssertionError as exc:
                errors.append(str(exc))
        assert not errors, errors

    def wait_for_cpus(self, n_cpus: int) -> None:
        """Connect, wait until the workers have joined, and disconnect again."""
        import ray

        ray.init(
            address=self.address,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
        try:
            deadline = time.monotonic() + _START_TIMEOUT_S
            while ray.cluster_resources().get("CPU", 0) < n_cpus:
                if time.monotonic() > deadline:
                    logs = "\n".join(self.log(n) for n in self.nodes if n != "head")
                    pytest.fail(f"workers did not join: {ray.nodes()}\n{logs}")
                time.sleep(0.2)
        finally:
            ray.shutdown()


@pytest.fixture
def cluster(monkeypatch):
    """Head plus workers w0 and w1; always torn down, the driver disconnected first."""
    import ray

    if ray.is_initialized():  # e.g. a build that connected to an address does not disconnect
        ray.shutdown()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # Unix socket paths live under the temp dir: keep it short (pytest's tmp_path is long).
    root = Path(tempfile.mkdtemp(prefix="mb-ray-", dir="/tmp" if Path("/tmp").is_dir() else None))
    nodes = LocalCluster(root)
    try:
        nodes.start_head()
        nodes.add_worker("w0")
        nodes.add_worker("w1")
        nodes.wait_for_cpus(2)
        yield nodes
    finally:
        try:
            ray.shutdown()
            nodes.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")}


def _keys(out: Path) -> list[str]:
    return sorted(pq.read_table(out / "index.parquet", columns=["key"]).column("key").to_pylist())


def test_worker_node_killed_mid_build_equals_clean_run(
    tmp_path, six_reels, six_reels_clean_runs, tiny_config, cluster
) -> None:
    shelf = six_reels  # six films of ~280 frames (tests/runtime/conftest.py)
    clean = build(shelf, tmp_path / "clean", tiny_config, executor="inline")
    assert clean.count("ok") == N_FILMS == len(shelf)
    six_reels_clean_runs.append(clean)  # the kill/resume tests compare with it too

    out = tmp_path / "faulty"
    kill: dict = {}

    def on_tick(monitor, progress: Progress) -> None:
        """Once a film has finished, kill a worker node that is running another film.

        Polled from the driver's loop rather than waited for in ``on_film``: while a
        callback blocks, the driver dispatches nothing, so the other node can fall idle."""
        if kill or not progress.done:
            return
        # a node running a stage task of a film, else one holding a model actor
        # (an actor's process is titled StageActor.call while it runs one; a node whose actor
        # sits idle loses no call, and whether a film notices depends on the actor's restart)
        busy = cluster.workers_running("_call_stage") or cluster.workers_running("StageActor.call")
        if not busy:
            return
        cluster.kill(busy[0])
        kill.update(node=busy[0], films_done=len(list((out / "films").glob("*.json"))))
        cluster.add_worker("w2")  # the replacement joins while the build goes on

    # A call refused by an actor Ray reports unavailable (the replacement not up yet) starts
    # its film again without counting toward max_retries (tiny.yaml allows one rerun).
    summary = build(
        shelf,
        out,
        tiny_config,
        executor="ray",
        ray_address=cluster.address,
        progress=Progress(on_tick=on_tick),
    )

    assert kill, "no node was killed"
    assert 0 < kill["films_done"] < N_FILMS, kill
    assert [(r.status, r.reason) for r in summary.results] == [("ok", None)] * N_FILMS
    # the lost film(s) were rerun, and every rerun is counted and said
    assert sum(r.attempts >= 2 for r in summary.results) >= 1
    for r in summary.results:
        assert r.attempts <= 1 + tiny_config.runtime.max_retries + MAX_REFUSALS, r
        assert sum(n.startswith("retried after:") for n in r.notes) == r.attempts - 1, r
    assert summary.stats["executor"] == "ray"
    assert _keys(out) == _keys(clean.out) and _keys(out)
    assert _shards(out) == _shards(clean.out)
    assert not [p.name for p in (out / "shards").iterdir() if p.name.startswith(".")]
    assert sorted(p.name for p in (out / "films").iterdir()) == sorted(
        f"{r.film_id}.json" for r in clean.results
    )
    films = pq.read_table(out / "films.parquet").to_pylist()
    assert sorted(r["film_id"] for r in films) == sorted(r.film_id for r in clean.results)
