"""Stream films through the stages on Ray: tasks for CPU stages, actor pools for model stages.

The driver keeps a queue per stage and a bounded number of films in the pipeline (at most
``max_in_flight``): a new film starts only when one has left, so memory stays flat however many
films there are. Stage payloads (a film's shots, subjects, clips) stay in Ray's object store;
the driver fetches only the small reports that route them. Later stages are served first, so
films finish (and free their objects) before new ones start.

Faults: Ray's own retries are off so that every retry is counted here. A lost worker, actor or
node (any Ray system error) restarts the film from its first stage, at most ``max_retries``
times; then the film is failed with the error. An exception raised by a stage (a bug, or a
stage that raises) fails the film at once with the error: running it again would raise again.
Actors restart by themselves (``max_restarts=-1``) so the pool survives a lost node.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from muss_builder.config import PipelineConfig, StageResources
from muss_builder.core.storage import Storage
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.layout import remove_film_outputs
from muss_builder.runtime.monitor import StageMonitor
from muss_builder.runtime.stages import Gathered, Stage, StageReport, new_work

WAIT_SECONDS = 0.5  # the live view refreshes at least this often
PROBE_SECONDS = 1.0  # how often a restarting actor is asked whether it is back
PROBE_LIMIT = 300  # unanswered pings (about 5 minutes) before an actor is given up


def _call_stage(stage: Stage, work: Any, unit: Any) -> tuple[StageReport, Any]:
    stage.setup()
    return stage.call(work, unit)


class StageActor:
    """One actor of a model stage's pool: the stage (and its model) set up once."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def call(self, work: Any, unit: Any) -> tuple[StageReport, Any]:
        return self.stage.call(work, unit)

    def ping(self) -> bool:
        return True


def pool_size(res: StageResources, cpus: float, gpus: float) -> int:
    """Actors of a model stage: as configured, else enough to fill the GPUs it asks for,
    else one per 4 CPUs (a CPU model actor serves the decode of about that many workers)."""
    if res.actors:
        return res.actors
    if res.num_gpus > 0:
        return max(1, math.floor(gpus / res.num_gpus))
    return max(1, math.floor(cpus / 4))


def check_fits(stages: list[tuple[Stage, StageResources]], cpus: float, gpus: float) -> None:
    """Refuse resources the cluster can never grant: Ray would wait for them forever."""
    held_cpus = held_gpus = 0.0
    for stage, res in stages:
        n = pool_size(res, cpus, gpus) if stage.kind == "actor" else 1
        if res.num_gpus and not gpus:
            raise ValueError(
                f"stage {stage.name} asks for {res.num_gpus:g} GPU per call/actor but the "
                f"cluster has none: set runtime.stages.{stage.name}.num_gpus: 0"
            )
        if res.num_cpus > cpus or res.num_gpus > gpus:
            raise ValueError(
                f"stage {stage.name} asks for {res.num_cpus:g} CPU, {res.num_gpus:g} GPU per "
                f"call; the cluster has {cpus:g} CPU, {gpus:g} GPU"
            )
        if stage.kind == "actor":
            held_cpus, held_gpus = held_cpus + n * res.num_cpus, held_gpus + n * res.num_gpus
    tasks_cpus = max((r.num_cpus for s, r in stages if s.kind == "task"), default=0.0)
    if held_cpus + tasks_cpus > cpus or held_gpus > gpus:
        raise ValueError(
            f"the actor pools hold {held_cpus:g} CPU and {held_gpus:g} GPU for the whole run, "
            f"leaving too little of the cluster's {cpus:g} CPU, {gpus:g} GPU for one task "
            f"({tasks_cpus:g} CPU): lower runtime.stages.*.num_cpus/num_gpus or actors"
        )


class _Lane:
    """Where one stage's calls go: a Ray task per call, or the least busy actor of a pool."""

    def __init__(self, stage: Stage, res: StageResources, cpus: float, gpus: float) -> None:
        import ray

        self.stage = stage
        options = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}
        if stage.kind == "actor":
            cls = ray.remote(StageActor).options(
                **options, max_restarts=-1, max_task_retries=0, max_concurrency=1
            )
            self.actors = [cls.remote(stage) for _ in range(pool_size(res, cpus, gpus))]
            self.load = [0] * len(self.actors)
            self.per_actor = res.max_calls_per_actor
            # An actor whose call failed with a system error is being restarted by Ray (on
            # another node if its node died): it gets no calls until a ping answers, so that
            # the films it lost are not burnt through their retries while it comes back.
            self.healthy = [True] * len(self.actors)
            self.probes: dict[Any, int] = {}  # ping ref -> actor
            self.probe_due: dict[int, float] = {}  # actor -> when to ping again
            self.failed_probes = [0] * len(self.actors)
            self.dead: dict[int, str] = {}  # actor -> why it will not come back
            self.capacity = len(self.actors) * res.max_calls_per_actor
            self.slots = float(len(self.actors))
        else:
            self.task = ray.remote(_call_stage).options(**options, max_retries=0, num_returns=2)
            # how many calls the cluster can run at once; a stage that asks for nothing is
            # bounded by the CPUs anyway so that it never floods the object store
            if res.num_gpus:
                share = gpus / res.num_gpus
            elif res.num_cpus:
                share = cpus / res.num_cpus
            else:
                share = cpus
            self.slots = float(max(1, math.floor(share)))
            self.capacity = max(1, int(self.slots))
        self.running = 0

    def submit(self, work_ref: Any, unit: Any) -> tuple[Any, Any, int | None]:
        self.running += 1
        if self.stage.kind == "actor":
            usable = [k for k in range(len(self.actors)) if self.healthy[k]]
            i = min(usable, key=lambda k: self.load[k])
            self.load[i] += 1
            report, payload = self.actors[i].call.options(num_returns=2).remote(work_ref, unit)
            return report, payload, i
        report, payload = self.task.remote(self.stage, work_ref, unit)
        return report, payload, None

    def done(self, actor: int | None) -> None:
        self.running -= 1
        if actor is not None:
            self.load[actor] -= 1

    def has_room(self) -> bool:
        if self.stage.kind == "actor":
            return any(
                self.healthy[k] and self.load[k] < self.per_actor for k in range(len(self.actors))
            )
        return self.running < self.capacity

    def suspect(self, actor: int) -> None:
        """A call on ``actor`` failed with a system error: hold its calls until it answers."""
        if self.healthy[actor]:
            self.healthy[actor] = False
            self.probe_due[actor] = 0.0

    def send_probes(self, now: float) -> None:
        for actor, due in list(self.probe_due.items()):
            if due <= now:
                del self.probe_due[actor]
                self.probes[self.actors[actor].ping.remote()] = actor

    def probe_answered(self, ref: Any, now: float) -> None:
        import ray
        from ray.exceptions import RayError

        actor = self.probes.pop(ref)
        try:
            ray.get(ref)
            self.healthy[actor], self.failed_probes[actor] = True, 0
        except RayError as exc:
            self.failed_probes[actor] += 1
            # its setup raised (Ray does not restart that), or it never came back
            if "creation task" in str(exc) or self.failed_probes[actor] >= PROBE_LIMIT:
                self.dead[actor] = f"{type(exc).__name__}: {_first_line(exc)}"
            else:  # still restarting (or its node not yet declared dead): ask again
                self.probe_due[actor] = now + PROBE_SECONDS

    def all_dead(self) -> str | None:
        """Why no actor of this pool will take a call again, or None while one may."""
        if self.stage.kind != "actor" or len(self.dead) < len(self.actors):
            return None
        return next(iter(self.dead.values()))


@dataclass
class _Film:
    path: str
    film_id: str
    attempt: int = 0
    stage: int = 0
    work_ref: Any = None
    units_left: int = 0
    unit_payloads: list[Any] = field(default_factory=list)
    unit_seconds: float = 0.0
    finished: bool = False
    retries: list[str] = field(default_factory=list)

    def retry_notes(self) -> list[str]:
        """What the build log says of this film's lost attempts."""
        return [f"retried after: {why}" for why in self.retries]


@dataclass
class _Call:
    film: _Film
    attempt: int
    stage: int
    unit_index: int
    payload: Any
    actor: int | None


class RayStreamingRunner:
    def __init__(
        self,
        stages: list[Stage],
        config: PipelineConfig,
        out_dir: str,
        monitor_tick: Callable[[StageMonitor], None] | None = None,
    ) -> None:
        import ray

        resources = ray.cluster_resources()
        self.cpus = float(resources.get("CPU", 1.0))
        self.gpus = float(resources.get("GPU", 0.0))
        self.stages, self.config, self.out_dir = stages, config, out_dir
        check_fits([(s, s.resources(config)) for s in stages], self.cpus, self.gpus)
        self.lanes = [_Lane(s, s.resources(config), self.cpus, self.gpus) for s in stages]
        self.monitor = StageMonitor(
            [s.name for s in stages],
            {s.name: lane.slots for s, lane in zip(stages, self.lanes, strict=True)},
        )
        self.tick = monitor_tick
        self.max_in_flight = config.runtime.max_in_flight or max(2, int(2 * self.cpus))
        self.queues: list[deque[tuple[_Film, Any]]] = [deque() for _ in stages]
        self.pending: dict[Any, _Call] = {}

    def describe(self) -> dict:
        """The pools and lanes as started, for stats.json."""
        return {
            "cluster_cpus": self.cpus,
            "cluster_gpus": self.gpus,
            "max_in_flight": self.max_in_flight,
            "stages": {
                s.name: {"kind": s.kind, "slots": lane.slots}
                | s.resources(self.config).model_dump(exclude={"actors"})
                | ({"actors": len(lane.actors)} if s.kind == "actor" else {})
                for s, lane in zip(self.stages, self.lanes, strict=True)
            },
        }

    def run(self, films: list[tuple[str, str]]) -> Iterator[FilmResult]:
        import ray

        waiting = deque(films)
        in_flight = 0
        while waiting or self.pending or any(self.queues):
            while waiting and in_flight < self.max_in_flight:
                path, film_id = waiting.popleft()
                self._start(_Film(path, film_id))
                in_flight += 1
            self._dispatch()
            now = time.monotonic()
            probes = {}
            for lane in self.lanes:
                if lane.stage.kind == "actor":
                    lane.send_probes(now)
                    probes.update(dict.fromkeys(lane.probes, lane))
            waiting_on = [*self.pending, *probes]
            if not waiting_on:  # only actors due for a ping later: nothing to wait on yet
                time.sleep(WAIT_SECONDS)
                continue
            ready, _ = ray.wait(waiting_on, num_returns=1, timeout=WAIT_SECONDS)
            for ref in ready:
                if ref in probes:
                    probes[ref].probe_answered(ref, time.monotonic())
                    continue
                finished = self._handle(ref, self.pending.pop(ref))
                if finished is not None:
                    in_flight -= 1
                    yield finished
            for finished in self._fail_dead_pools():
                in_flight -= 1
                yield finished
            if self.tick:
                self.tick(self.monitor)

    # ------------------------------------------------------------------ internals

    def _start(self, film: _Film) -> None:
        import ray

        work = new_work(film.path, film.film_id, self.config, self.out_dir)
        work.result.attempts = film.attempt + 1
        film.stage, film.work_ref = 0, ray.put(work)
        self._enqueue(film, 0, [None])

    def _enqueue(self, film: _Film, stage: int, units: list[Any]) -> None:
        film.stage = stage
        film.units_left, film.unit_payloads, film.unit_seconds = len(units), [None] * len(units), 0
        for i, unit in enumerate(units):
            self.queues[stage].append((film, film.attempt, i, unit))
        self.monitor.stages[self.stages[stage].name].queued += len(units)

    def _dispatch(self) -> None:
        for stage in reversed(range(len(self.stages))):  # later stages first: films finish
            lane, queue = self.lanes[stage], self.queues[stage]
            counters = self.monitor.stages[self.stages[stage].name]
            while queue and lane.has_room():
                film, attempt, index, unit = queue.popleft()
                counters.queued -= 1
                if film.finished or attempt != film.attempt:
                    continue  # left over from an attempt that was restarted or failed
                report, payload, actor = lane.submit(film.work_ref, unit)
                self.pending[report] = _Call(film, attempt, stage, index, payload, actor)
                counters.running += 1

    def _fail_dead_pools(self) -> Iterator[FilmResult]:
        """Films queued for a pool whose every actor is dead fail with the reason (rather
        than wait forever)."""
        for stage, lane in enumerate(self.lanes):
            why = lane.all_dead()
            counters = self.monitor.stages[self.stages[stage].name]
            while why and self.queues[stage]:
                film, attempt, _, _ = self.queues[stage].popleft()
                counters.queued -= 1
                if not film.finished and attempt == film.attempt:
                    yield self._fail(film, f"{lane.stage.name}: no actor left: {why}")

    def _handle(self, ref: Any, call: _Call) -> FilmResult | None:
        import ray
        from ray.exceptions import RayError, RayTaskError

        film, stage = call.film, self.stages[call.stage]
        self.lanes[call.stage].done(call.actor)
        self.monitor.stages[stage.name].running -= 1
        if film.finished or call.attempt != film.attempt:
            return None  # a unit of an attempt that was already restarted or failed
        try:
            report: StageReport = ray.get(ref)
        except RayTaskError as exc:  # the stage itself raised: running it again raises again
            return self._fail(film, f"{stage.name} raised: {_first_line(exc)}", str(exc))
        except RayError as exc:  # a worker, actor or node was lost: start the film again
            if call.actor is not None:
                self.lanes[call.stage].suspect(call.actor)
            reason = f"{stage.name}: {type(exc).__name__}: {_first_line(exc)}"
            film.retries.append(reason)
            if film.attempt >= self.config.runtime.max_retries:
                return self._fail(film, f"lost {film.attempt + 1} times, last: {reason}", str(exc))
            film.attempt += 1
            self._start(film)
            return None
        self.monitor.finished_call(stage.name, report.started, report.finished, report.film_seconds)
        result = report.result
        assert result is not None
        result.attempts = film.attempt + 1
        result.notes[:0] = film.retry_notes()
        if report.status == "failed":
            film.finished = True
            return result
        film.unit_payloads[call.unit_index] = call.payload
        film.unit_seconds += report.seconds
        film.units_left -= 1
        if film.units_left:
            return None
        if call.stage == len(self.stages) - 1:
            film.finished = True
            return result
        next_stage = self.stages[call.stage + 1]
        if stage.fan_out:
            units = [Gathered(film.unit_payloads, film.unit_seconds)]
        else:
            film.work_ref = film.unit_payloads[0]
            units = next_stage.units_for(report, self.config)
        self._enqueue(film, call.stage + 1, units)
        return None

    def _fail(self, film: _Film, reason: str, trace: str | None = None) -> FilmResult:
        film.finished = True
        remove_film_outputs(Storage.open(self.out_dir), film.film_id)
        return FilmResult(
            path=film.path,
            film_id=film.film_id,
            reason=reason,
            attempts=film.attempt + 1,
            traceback=trace,
            notes=film.retry_notes(),
        )


def cluster_lost(exc: BaseException) -> str | None:
    """One line when ``exc``, raised while waiting on Ray, means the cluster itself is gone
    (not one film's worker): the build cannot go on. None for anything else."""
    from ray.exceptions import RayError, RayTaskError

    if isinstance(exc, RayTaskError) or not isinstance(exc, (RayError, ConnectionError)):
        return None
    return f"lost the Ray cluster ({type(exc).__name__}: {_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    """The line of a Ray error worth a films.parquet row: the Python error at the bottom of
    a traceback Ray carries (e.g. an actor's setup error), else the message's first line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    errors = [line for line in lines[1:] if re.match(r"^[A-Za-z_.]*(Error|Exception)\b.*:", line)]
    return errors[-1] if errors else lines[0]
