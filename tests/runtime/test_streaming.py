"""The streaming Ray driver: stage failures, lost workers and actors, bounded retries, split
clip units, and the per-stage figures in stats.json.

Faults are real: a stage of our own (a subclass of a shipped stage) raises, or kills its own
process with ``os._exit`` on the first attempt of one film, which Ray sees as a dead worker or
a dead actor exactly as it would see one killed by the OOM killer.

The Ray builds share one local cluster of 2 CPUs (``ray_cluster``), started as a build starts
its own: a build that finds Ray up in its process runs on it and leaves it up, so the cluster
and its workers start once for the module, not once per build. Each such test starts with
every CPU of it free. Inline builds run with Ray down (``no_ray``): with Ray up in the driver,
an inline build would use Ray's duplicate registry.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray.cloudpickle

from muss_builder.config import PipelineConfig, StageResources
from muss_builder.runtime.build import Progress, build
from muss_builder.runtime.executors import RayExecutor
from muss_builder.runtime.film_job import FilmWork
from muss_builder.runtime.monitor import StageCounters
from muss_builder.runtime.stage_base import Stage, StageSetupError
from muss_builder.runtime.stages import AnalyseStage, SubjectsStage, default_stages
from muss_builder.testing.synthetic_films import make_film

# The stages below live in this test module, which Ray's workers cannot import: send them by
# value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.ray


class RaisingSubjects(SubjectsStage):
    """A model stage whose actor raises on one film."""

    def __init__(self, bad_name: str) -> None:
        self.bad_name = bad_name

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        if Path(work.path).name == self.bad_name:
            raise RuntimeError("model exploded on this film")
        return super().process(work, unit)


class SetupFailingSubjects(SubjectsStage):
    """A model stage whose model cannot load: every actor of the pool dies in setup."""

    def setup(self, config: PipelineConfig) -> None:
        raise RuntimeError("face pack not found at /nowhere")


class BrokenAfterRestart(SubjectsStage):
    """A model stage whose actor starts, dies on the victim's call, and whose model is gone
    when Ray restarts it (a marker file says it died)."""

    def __init__(self, victim: str, marker: str) -> None:
        self.victim, self.marker = victim, marker

    def setup(self, config: PipelineConfig) -> None:
        if Path(self.marker).exists():
            raise RuntimeError("model gone after a restart")
        super().setup(config)

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        if Path(work.path).name == self.victim:
            Path(self.marker).write_text("died")
            os._exit(1)
        return super().process(work, unit)


class DyingOnce:
    """Mixin: the first call for ``victim`` kills this worker process (a marker file makes it
    happen once, across processes)."""

    victim: str
    marker: str

    def maybe_die(self, work: FilmWork) -> None:
        if Path(work.path).name == self.victim and not Path(self.marker).exists():
            Path(self.marker).write_text("died")
            os._exit(1)


class DyingAnalyse(DyingOnce, AnalyseStage):
    def __init__(self, victim: str, marker: str) -> None:
        self.victim, self.marker = victim, marker

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        self.maybe_die(work)
        return super().process(work, unit)


class DyingSubjects(DyingOnce, SubjectsStage):
    def __init__(self, victim: str, marker: str) -> None:
        self.victim, self.marker = victim, marker

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        self.maybe_die(work)
        return super().process(work, unit)


class AlwaysDyingAnalyse(AnalyseStage):
    def __init__(self, victim: str) -> None:
        self.victim = victim

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        if Path(work.path).name == self.victim:
            os._exit(1)
        return super().process(work, unit)


class SharedCluster:
    """A local Ray cluster for this module's Ray builds, started when a test first needs it
    (as ``build(..., executor="ray", num_cpus=2)`` starts one) and stopped for inline builds
    and at the module's end."""

    def __init__(self) -> None:
        self.executor: RayExecutor | None = None
        self.env = pytest.MonkeyPatch()

    def up(self) -> None:
        import ray

        if self.executor is None:
            # A call whose worker died leaves a second return (its payload) nobody fetches;
            # Ray logs each such ref as an "Unhandled error" a few seconds after it is freed.
            # A cluster per build shuts down before then; this one lives on, so its notices
            # (never seen with a cluster per build) would fail the next test.
            self.env.setenv("RAY_IGNORE_UNHANDLED_ERRORS", "1")
            self.executor = RayExecutor(num_cpus=2).__enter__()
        # every CPU free: no actor of an earlier test's build still holds one
        gc.collect()
        deadline = time.monotonic() + 60
        while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
            assert time.monotonic() < deadline, f"CPUs still held: {ray.available_resources()}"
            time.sleep(0.1)

    def down(self) -> None:
        if self.executor is not None:
            executor, self.executor = self.executor, None
            executor.__exit__(None, None, None)
        self.env.undo()


@pytest.fixture(scope="module")
def shared_cluster():
    cluster = SharedCluster()
    yield cluster
    cluster.down()


@pytest.fixture
def ray_cluster(shared_cluster: SharedCluster) -> None:
    """The module's Ray cluster, up, with every CPU free."""
    shared_cluster.up()


@pytest.fixture
def no_ray(shared_cluster: SharedCluster) -> None:
    """Ray down in this process, for an inline build."""
    shared_cluster.down()


@pytest.fixture(scope="module")
def shelf(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("stream_shelf")
    return [
        str(make_film(root / f"film{i}.mp4", (30 + i, 26, 34, 28, 40, 30, 36, 28, 32), fps=24).path)
        for i in range(4)
    ]


@pytest.fixture(scope="module")
def clean(tmp_path_factory, shelf, tiny_config, shared_cluster: SharedCluster) -> Path:
    shared_cluster.down()  # an inline build
    out = tmp_path_factory.mktemp("clean")
    summary = build(shelf, out, tiny_config, executor="inline")
    assert {r.status for r in summary.results} == {"ok"}
    return out


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))}


def index_keys(out: Path) -> list[str]:
    return [r["key"] for r in pq.read_table(out / "index.parquet").to_pylist()]


def replace_stage(new: object) -> list:
    """The default stages with the one ``new`` derives from replaced by it."""
    return [new if isinstance(new, type(s)) else s for s in default_stages()]


def test_ray_build_equals_inline_and_reports_stages(
    tmp_path, shelf, clean, tiny_config, ray_cluster
) -> None:
    out = tmp_path / "ray"
    summary = build(shelf, out, tiny_config, executor="ray", num_cpus=2)
    assert {r.status for r in summary.results} == {"ok"}
    assert shard_bytes(out) == shard_bytes(clean)
    assert index_keys(out) == index_keys(clean)
    stats = json.loads((out / "stats.json").read_text())
    assert list(stats["stages"]) == ["analyse", "subjects", "curate", "captions", "clips", "shards"]
    for name, row in stats["stages"].items():
        assert row["calls"] == len(shelf), name  # short films: one clip unit each
        assert 0 < row["busy_share"] <= 1
    assert stats["runtime"]["stages"]["subjects"]["kind"] == "actor"
    ordered = [n for n, row in stats["runtime"]["stages"].items() if row["in_input_order"]]
    assert ordered == ["curate"]  # duplicate claims follow the input order
    assert stats["runtime"]["stages"]["subjects"]["actors"] == 1
    assert stats["runtime"]["max_in_flight"] == 4


def test_a_raising_actor_fails_only_its_film(
    tmp_path, shelf, clean, tiny_config, ray_cluster
) -> None:
    bad = Path(shelf[1]).name
    stages = replace_stage(RaisingSubjects(bad))
    summary = build(shelf, tmp_path / "out", tiny_config, executor="ray", stages=stages)
    by_name = {Path(r.path).name: r for r in summary.results}
    assert by_name[bad].status == "failed"
    assert "model exploded on this film" in by_name[bad].reason
    assert "subjects" in by_name[bad].reason
    assert all(r.status == "ok" for n, r in by_name.items() if n != bad)
    # the failed film left nothing; every other film is exactly as in a clean run
    clean_shards = shard_bytes(clean)
    out_shards = shard_bytes(tmp_path / "out")
    bad_id = by_name[bad].film_id
    assert not [n for n in out_shards if n.startswith(bad_id)]
    assert out_shards == {n: b for n, b in clean_shards.items() if not n.startswith(bad_id)}


@pytest.mark.parametrize("stage_cls", [DyingAnalyse, DyingSubjects], ids=["task", "actor"])
def test_a_killed_worker_or_actor_costs_one_retry(
    tmp_path, shelf, clean, tiny_config, stage_cls, ray_cluster
) -> None:
    victim = Path(shelf[2]).name
    stages = replace_stage(stage_cls(victim, str(tmp_path / "died")))
    out = tmp_path / "out"
    summary = build(shelf, out, tiny_config, executor="ray", num_cpus=2, stages=stages)
    assert (tmp_path / "died").exists()  # the worker really died
    by_name = {Path(r.path).name: r for r in summary.results}
    assert {r.status for r in summary.results} == {"ok"}
    assert by_name[victim].attempts == 2
    others = [r.attempts for n, r in by_name.items() if n != victim]
    if stage_cls is DyingAnalyse:
        assert others == [1] * len(others)
    else:  # the call queued behind the victim's on the same actor is lost with it
        assert max(others) <= 2 and others.count(1) >= len(others) - 1
    assert shard_bytes(out) == shard_bytes(clean)
    assert index_keys(out) == index_keys(clean)
    # the driver's log has what the workers reported, the retry included
    (log,) = (out / "logs").glob("build-*.log")
    lines = log.read_text().splitlines()
    victim_line = next(
        i for i, line in enumerate(lines) if line.endswith(f"/{victim} (attempts 2)")
    )
    assert "retried after: " in lines[victim_line + 1]


def test_a_pool_whose_actors_cannot_start_stops_the_build_before_any_film(
    tmp_path, shelf, tiny_config, ray_cluster
) -> None:
    stages = replace_stage(SetupFailingSubjects())
    seen: list[str] = []
    progress = Progress(on_film=lambda r, _: seen.append(r.path))
    out = tmp_path / "out"
    with pytest.raises(StageSetupError) as stopped:
        build(shelf[:2], out, tiny_config, executor="ray", stages=stages, progress=progress)
    assert str(stopped.value) == (
        "stage subjects cannot start: RuntimeError: face pack not found at /nowhere"
    )
    assert seen == []  # not one failure per film
    assert not list((out / "films").glob("*.json"))
    assert not (out / "films.parquet").exists()


def test_a_bad_model_path_stops_a_ray_build_before_any_film(tmp_path, shelf, tiny_config) -> None:
    """The shipped subjects stage with a face pack folder that does not exist: each actor's
    constructor runs setup(), and the first that fails stops the build with one line."""
    data = tiny_config.model_dump()
    data["subjects"]["faces"]["pack"] = str(tmp_path / "no-such-pack")
    config = PipelineConfig.model_validate(data)
    seen: list[str] = []
    progress = Progress(on_film=lambda r, _: seen.append(r.path))
    out = tmp_path / "out"
    with pytest.raises(StageSetupError) as stopped:
        build(shelf, out, config, executor="ray", num_cpus=2, progress=progress)
    message = str(stopped.value)
    assert message.startswith("stage subjects cannot start: ModelNotFoundError: face model pack")
    assert str(tmp_path / "no-such-pack") in message and "\n" not in message
    assert seen == []
    assert not list((out / "films").glob("*.json"))
    assert not (out / "films.parquet").exists()


def test_a_pool_whose_actors_cannot_come_back_fails_its_films_not_the_run(
    tmp_path, shelf, tiny_config, ray_cluster
) -> None:
    """Set up once, an actor dies and Ray's restart of it fails: the pool is dead, the films
    that wait for it fail with why, and the build ends."""
    victim = Path(shelf[0]).name
    stages = replace_stage(BrokenAfterRestart(victim, str(tmp_path / "died")))
    out = tmp_path / "out"
    summary = build(shelf[:2], out, tiny_config, executor="ray", num_cpus=2, stages=stages)
    by_name = {Path(r.path).name: r for r in summary.results}
    assert (tmp_path / "died").exists()
    assert by_name[victim].status == "failed"
    assert "subjects: no actor left: " in by_name[victim].reason, by_name[victim].reason
    assert "model gone after a restart" in by_name[victim].reason
    for r in summary.results:  # the other film got through first, or waited for the pool
        assert r.status == "ok" or "no actor left" in r.reason, r.reason
    assert not (out / "films" / f"{by_name[victim].film_id}.json").exists()


def test_retries_are_bounded(tmp_path, shelf, tiny_config, ray_cluster) -> None:
    victim = Path(shelf[0]).name
    stages = replace_stage(AlwaysDyingAnalyse(victim))
    summary = build(shelf, tmp_path / "out", tiny_config, executor="ray", stages=stages)
    by_name = {Path(r.path).name: r for r in summary.results}
    retries = tiny_config.runtime.max_retries
    assert by_name[victim].status == "failed"
    assert by_name[victim].attempts == retries + 1
    assert f"lost {retries + 1} times" in by_name[victim].reason
    assert by_name[victim].traceback  # Ray's error, whole, for films.parquet and the log
    assert all(r.status == "ok" for n, r in by_name.items() if n != victim)


@pytest.mark.parametrize("executor", ["ray", "inline"])  # the cluster is up already
def test_split_clip_units_write_the_same_shards(
    tmp_path, shelf, clean, tiny_config, executor, request
) -> None:
    request.getfixturevalue("ray_cluster" if executor == "ray" else "no_ray")
    # units of 2 s of footage: every sample window is its own unit
    config = tiny_config.model_copy(
        update={
            "runtime": tiny_config.runtime.model_copy(update={"clip_unit_seconds": 2.0}),
        }
    )
    out = tmp_path / executor
    build(shelf, out, config, executor=executor, num_cpus=2)
    stats = json.loads((out / "stats.json").read_text())
    samples = len(index_keys(clean))
    assert stats["stages"]["clips"]["calls"] > len(shelf)
    assert stats["stages"]["clips"]["calls"] <= samples
    assert shard_bytes(out) == shard_bytes(clean)


class Waiting(Stage):
    """Notes each film's start in ``path``, then holds the film named ``slow`` for
    ``seconds`` (no CPU held: a long film's decode)."""

    name = "waiting"

    def __init__(self, path: str, slow: str, seconds: float) -> None:
        self.path, self.slow, self.seconds = path, slow, seconds

    def resources(self, config: PipelineConfig) -> StageResources:
        return StageResources(num_cpus=0)

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        with open(self.path, "a") as f:
            f.write(f"start-{Path(work.path).name}\n")
        if Path(work.path).name == self.slow:
            time.sleep(self.seconds)
        return work


class Ledger(Stage):
    """Appends each film's name to ``path``: the order its calls ran in."""

    name = "ledger"

    def __init__(self, path: str, in_order: bool) -> None:
        self.path, self.in_order = path, in_order

    def resources(self, config: PipelineConfig) -> StageResources:
        return StageResources(num_cpus=0)

    def runs_in_input_order(self, config: PipelineConfig) -> bool:
        return self.in_order

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        with open(self.path, "a") as f:
            f.write(Path(work.path).name + "\n")
        return work


@pytest.mark.parametrize("in_order", [True, False], ids=["in-input-order", "first-come"])
def test_a_stage_in_input_order_waits_for_the_earlier_films(
    tmp_path, tiny_config, ray_cluster, in_order
) -> None:
    """The first film is held up before the ordered stage: with the stage in input order the
    later films park until it has passed (and a parked film lets the next one start); without,
    they pass it first."""
    from muss_builder.runtime.streaming import RayStreamingRunner

    log = tmp_path / "calls.txt"
    stages = [Waiting(str(log), "a.mp4", 3.0), Ledger(str(log), in_order)]
    runner = RayStreamingRunner(stages, tiny_config, str(tmp_path / "out"))
    runner.max_in_flight = 2
    results = list(runner.run([(str(tmp_path / f"{n}.mp4"), n) for n in "abc"]))
    assert sorted(r.film_id for r in results) == ["a", "b", "c"]
    calls = log.read_text().split()
    passed = [c for c in calls if not c.startswith("start-")]
    assert passed == (["a.mp4", "b.mp4", "c.mp4"] if in_order else ["b.mp4", "c.mp4", "a.mp4"])
    # in order, c started while a was still held up: b, parked, did not count as in flight
    assert calls.index("start-c.mp4") < calls.index("a.mp4")


def test_busy_seconds_is_the_union_of_intervals() -> None:
    c = StageCounters("x", intervals=[(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.7)])
    assert c.busy_seconds() == pytest.approx(4.0)


def test_pool_sizes_follow_the_resources() -> None:
    from muss_builder.config import StageResources
    from muss_builder.runtime.lanes import pool_size

    assert pool_size(StageResources(actors=3), cpus=64, gpus=8) == 3
    assert pool_size(StageResources(num_gpus=0.25), cpus=64, gpus=2) == 8
    assert pool_size(StageResources(num_gpus=1), cpus=64, gpus=0) == 1  # never zero actors
    assert pool_size(StageResources(), cpus=2, gpus=0) == 1
    assert pool_size(StageResources(), cpus=16, gpus=0) == 4


def test_resources_the_cluster_cannot_grant_are_refused() -> None:
    from muss_builder.config import StageResources
    from muss_builder.runtime.stages import ClipsStage
    from muss_builder.runtime.streaming import check_fits

    subjects, clips = SubjectsStage(), ClipsStage()
    check_fits([(subjects, StageResources(num_cpus=1)), (clips, StageResources())], 2, 0)
    with pytest.raises(ValueError, match="cluster has none"):
        check_fits([(subjects, StageResources(num_gpus=0.5))], 8, 0)
    with pytest.raises(ValueError, match="leaving too little"):
        check_fits([(subjects, StageResources(num_cpus=2)), (clips, StageResources())], 2, 0)
    with pytest.raises(ValueError, match="asks for 4 CPU"):
        check_fits([(clips, StageResources(num_cpus=4))], 2, 0)


def test_only_errors_of_the_cluster_itself_stop_the_build() -> None:
    """What the driver treats as a lost cluster (one line, exit 4), and what stays a film's
    failure. The end-to-end case (a head killed mid-build) is not tested here: see the README."""
    from ray.exceptions import RaySystemError, RayTaskError

    from muss_builder.runtime.streaming import cluster_lost

    gone = cluster_lost(RaySystemError("GCS is unreachable\n  more detail"))
    assert gone is not None and gone.startswith("lost the Ray cluster (RaySystemError:")
    assert "\n" not in gone
    assert cluster_lost(ConnectionError("connection refused")) is not None
    task = RayTaskError("call", "Traceback ...\nValueError: bad", ValueError("bad"))
    assert cluster_lost(task) is None  # a stage raised: that film's failure
    assert cluster_lost(ValueError("a bug")) is None


def test_a_loss_inside_a_stage_call_restarts_the_film_a_bug_fails_it() -> None:
    """A stage call that raised because an object it read was lost with its node (a parked
    film's payload) is Ray's loss: the film starts again. Its own error, or one Ray could not
    pickle (which Ray hands back as a plain RayError), fails the film."""
    from ray.exceptions import ObjectReconstructionFailedError, RayError, RayTaskError

    from muss_builder.runtime.streaming import lost_inside

    lost = ObjectReconstructionFailedError("ab" * 28)
    assert lost_inside(RayTaskError("call", "trace", lost))
    assert not lost_inside(RayTaskError("call", "trace", ValueError("a bug")))
    assert not lost_inside(RayTaskError("call", "trace", RayError("not serializable")))
