"""Stream films through the stages on Ray: tasks for CPU stages, actor pools for model stages.

The driver keeps a queue of calls per stage and a bounded number of films in the pipeline (at
most ``max_in_flight``): a new film starts only when one has left, so memory stays flat however
many films there are. Which calls a film needs next is its ``FilmFlow``'s business (the state
machine the inline driver drives too); this driver sends each call to its stage's lane
(``lanes.py``) and feeds the answers back. Stage payloads (a film's shots, subjects, clips) stay
in Ray's object store; the driver fetches only the small reports that route them. Later stages
are served first, so films finish (and free their objects) before new ones start.

Input order: a stage that says so (``Stage.runs_in_input_order``: the curate stage, whose
duplicate claims decide which of two copies is the original) takes a film's call only once
every film started before it has passed that stage or finished, so its calls run in the order
the films were given, as they do inline. A film waiting there is *parked*: it holds no worker,
and parked films do not count toward ``max_in_flight`` (up to as many again), so a slow film
ahead of them does not empty the pipeline behind it.

Faults: Ray's own retries are off so that every retry is counted here. A lost worker, actor or
node (any Ray system error) restarts the film from its first stage, at most ``max_retries``
times; then the film is failed with the error. A call refused by an actor Ray reports
*unavailable* (``ActorUnavailableError``: its node was lost while it sat idle, so the pool
learns of the loss only from the next call, or it is still restarting) restarts the film too
but does not count toward ``max_retries``, up to ``MAX_REFUSALS`` times a film: the film lost
nothing, and a node lost under an idle actor would otherwise cost the next film an attempt.
An exception raised by a stage (a bug, or a stage that raises) fails the film at once with the
error: running it again would raise again; unless what it raised is Ray's own loss (an input
object lost with its node, ``lost_inside``), which restarts the film like a lost worker.
Actors restart by themselves (``max_restarts=-1``) so the pool survives a lost node. A stage
whose setup raises (a model that does not load) stops the build: ``StageSetupError``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from muss_builder.config import PipelineConfig, StageResources
from muss_builder.core.interrupts import stop_if_interrupted
from muss_builder.core.storage import Storage
from muss_builder.runtime.film_flow import FilmFlow, UnitCall
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.lanes import Lane, Submitted, make_lane, pool_size, ray_error_line
from muss_builder.runtime.layout import remove_film_outputs
from muss_builder.runtime.monitor import StageMonitor
from muss_builder.runtime.stage_base import Stage, StageReport

WAIT_SECONDS = 0.5  # the live view refreshes at least this often
MAX_REFUSALS = 3  # a film's restarts after an unavailable actor refused its call, uncounted


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


@dataclass
class _Sent:
    """A call the driver waits on: what it was for and where it went."""

    call: UnitCall
    submitted: Submitted


class RayStreamingRunner:
    """The films of a build through ``stages`` on the Ray cluster this process is connected
    to; ``run`` yields each film's result as it finishes."""

    def __init__(
        self,
        stages: Sequence[Stage],
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
        self.lanes: list[Lane] = [make_lane(s, config, self.cpus, self.gpus) for s in stages]
        self.monitor = StageMonitor(
            [s.name for s in stages],
            {s.name: lane.slots for s, lane in zip(stages, self.lanes, strict=True)},
        )
        self.tick = monitor_tick
        self.max_in_flight = config.runtime.max_in_flight or max(2, int(2 * self.cpus))
        self.queues: list[deque[UnitCall]] = [deque() for _ in stages]
        self.pending: dict[Any, _Sent] = {}  # report ref -> the call
        # stages whose calls run in the films' input order, and the films not yet finished
        self.ordered = {i for i, s in enumerate(stages) if s.runs_in_input_order(config)}
        self.flows: list[FilmFlow] = []  # in the order they started

    def describe(self) -> dict:
        """The pools and lanes as started, for stats.json."""
        return {
            "cluster_cpus": self.cpus,
            "cluster_gpus": self.gpus,
            "max_in_flight": self.max_in_flight,
            "stages": {
                s.name: {"kind": s.kind, "slots": lane.slots, "in_input_order": i in self.ordered}
                | s.resources(self.config).model_dump(exclude={"actors"})
                | lane.describe()
                for i, (s, lane) in enumerate(zip(self.stages, self.lanes, strict=True))
            },
        }

    def run(self, films: list[tuple[str, str]]) -> Iterator[FilmResult]:
        import ray

        waiting = deque(films)
        in_flight = 0
        while waiting or self.pending or any(self.queues):
            stop_if_interrupted()  # a Ctrl-C a finaliser swallowed still stops the build
            self.flows = [f for f in self.flows if not f.finished]
            room = self.max_in_flight + min(self._parked(), self.max_in_flight)
            while waiting and in_flight < room:
                path, film_id = waiting.popleft()
                flow = FilmFlow(path, film_id, self.stages, self.config)
                self.flows.append(flow)
                self._start(flow)
                in_flight += 1
            self._dispatch()
            now = time.monotonic()
            checks = {ref: lane for lane in self.lanes for ref in lane.checks(now)}
            waiting_on = [*self.pending, *checks]
            if not waiting_on:  # only actors due for a ping later: nothing to wait on yet
                time.sleep(WAIT_SECONDS)
                continue
            ready, _ = ray.wait(waiting_on, num_returns=1, timeout=WAIT_SECONDS)
            for ref in ready:
                if ref in checks:  # raises StageSetupError when a stage cannot start
                    checks[ref].check_answered(ref, time.monotonic())
                    continue
                finished = self._handle(ref, self.pending.pop(ref))
                if finished is not None:
                    in_flight -= 1
                    yield finished
            for finished in self._fail_unavailable():
                in_flight -= 1
                yield finished
            if self.tick:
                self.tick(self.monitor)

    # ------------------------------------------------------------------ internals

    def _start(self, flow: FilmFlow) -> None:
        """Start the film's current attempt at its first stage."""
        import ray

        self._enqueue(flow.begin(ray.put(flow.new_work(self.out_dir))))

    def _enqueue(self, calls: list[UnitCall]) -> None:
        for call in calls:
            self.queues[call.stage].append(call)
            self.monitor.stages[self.stages[call.stage].name].queued += 1

    def _dispatch(self) -> None:
        for stage in reversed(range(len(self.stages))):  # later stages first: films finish
            lane, queue = self.lanes[stage], self.queues[stage]
            counters = self.monitor.stages[self.stages[stage].name]
            parked: list[UnitCall] = []
            while queue and lane.has_room():
                call = queue.popleft()
                if call.flow.is_current(call) and not self._its_turn(call):
                    parked.append(call)  # stays queued, in its place
                    continue
                counters.queued -= 1
                if not call.flow.is_current(call):
                    continue  # left over from an attempt that was restarted or failed
                submitted = lane.submit(call.flow.work, call.unit)
                self.pending[submitted.report] = _Sent(call, submitted)
                counters.running += 1
            queue.extendleft(reversed(parked))

    def _its_turn(self, call: UnitCall) -> bool:
        """Whether ``call`` may run now: always, unless its stage runs in input order and a
        film started before this one has not passed that stage yet (a film that is started
        again after a lost worker is back before it)."""
        if call.stage not in self.ordered:
            return True
        for flow in self.flows:  # in start order: only the films before this one matter
            if flow is call.flow:
                return True
            if not flow.finished and flow.stage <= call.stage:
                return False
        return True

    def _parked(self) -> int:
        """Films whose next call waits for an earlier film (see ``_its_turn``)."""
        return sum(
            1
            for stage in self.ordered
            for call in self.queues[stage]
            if call.flow.is_current(call) and not self._its_turn(call)
        )

    def _fail_unavailable(self) -> Iterator[FilmResult]:
        """Films queued for a lane that will take no call again (a pool whose every actor
        is dead) fail with the reason, rather than wait forever."""
        for stage, lane in enumerate(self.lanes):
            why = lane.unavailable()
            counters = self.monitor.stages[self.stages[stage].name]
            while why and self.queues[stage]:
                call = self.queues[stage].popleft()
                counters.queued -= 1
                if call.flow.is_current(call):
                    yield self._fail(call.flow, f"{lane.stage.name}: no actor left: {why}")

    def _handle(self, ref: Any, sent: _Sent) -> FilmResult | None:
        """Feed one call's answer to its film's flow; the film's result once it is finished."""
        import ray
        from ray.exceptions import ActorUnavailableError, RayError, RayTaskError

        call, flow, stage = sent.call, sent.call.flow, self.stages[sent.call.stage]
        lane = self.lanes[call.stage]
        lane.done(sent.submitted)
        self.monitor.stages[stage.name].running -= 1
        if not flow.is_current(call):
            return None  # a unit of an attempt that was already restarted or failed
        try:
            report: StageReport = ray.get(ref)
        except RayError as exc:
            if isinstance(exc, RayTaskError) and not lost_inside(exc):
                # the stage itself raised: running it again raises again
                return self._fail(flow, f"{stage.name} raised: {ray_error_line(exc)}", str(exc))
            # a worker, actor, node or object was lost: start the film again
            if not isinstance(exc, RayTaskError):  # its worker or actor, not an object it read
                lane.call_lost(sent.submitted)
            # an actor that was unavailable when the call came (its node lost while it sat
            # idle, or still restarting) may never have run it: that is the pool's loss, not
            # the film's, so it does not count toward max_retries (a few times a film)
            refused = isinstance(exc, ActorUnavailableError) and flow.refusals < MAX_REFUSALS
            flow.lost(f"{stage.name}: {type(exc).__name__}: {ray_error_line(exc)}", str(exc),
                      self.config.runtime.max_retries, counted=not refused)  # fmt: skip
            if flow.finished:
                return self._removed_outputs(flow)
            self._start(flow)
            return None
        self.monitor.finished_call(stage.name, report.started, report.finished, report.film_seconds)
        self._enqueue(flow.unit_done(call, report, sent.submitted.payload))
        return flow.result

    def _fail(self, flow: FilmFlow, reason: str, trace: str | None = None) -> FilmResult:
        flow.fail(reason, trace)
        return self._removed_outputs(flow)

    def _removed_outputs(self, flow: FilmFlow) -> FilmResult:
        """The result of a film the driver failed, once what its stages wrote is removed."""
        remove_film_outputs(Storage.open(self.out_dir), flow.film_id)
        assert flow.result is not None
        return flow.result


def lost_inside(exc: BaseException) -> bool:
    """Whether a stage call that raised did so because Ray lost something under it (an input
    object that lived on a lost node, an actor the stage called), not because of the stage: a film
    parked before an ordered stage keeps its payload on the node that made it, and a lost node
    takes it along. Starting the film again makes it anew."""
    from ray.exceptions import ObjectLostError, RayActorError

    # named kinds only: Ray also turns a stage's own exception it cannot pickle into a RayError
    return isinstance(getattr(exc, "cause", None), (ObjectLostError, RayActorError))


def cluster_lost(exc: BaseException) -> str | None:
    """One line when ``exc``, raised while waiting on Ray, means the cluster itself is gone
    (not one film's worker): the build cannot go on. None for anything else."""
    from ray.exceptions import RayError, RayTaskError

    if isinstance(exc, RayTaskError) or not isinstance(exc, (RayError, ConnectionError)):
        return None
    return f"lost the Ray cluster ({type(exc).__name__}: {ray_error_line(exc)})"
