"""Where one stage's calls go on Ray: a ``TaskLane`` (a Ray task per call) for CPU stages, an
``ActorPoolLane`` (the least busy of a pool of actors, each holding the stage's models) for
model stages. Both answer the same small interface the streaming driver uses (``Lane``).

Setup: a task lane runs the stage's ``setup`` once as a task, an actor runs it in its
constructor; a lane takes no call before that has answered, and a setup that raises stops the
build (``StageSetupError``). Health: an actor whose call failed with a system error is being
restarted by Ray (on another node if its node died); it gets no calls until a ping answers, so
that the films it lost are not burnt through their retries while it comes back. An actor that
cannot come back is dead; a pool whose actors are all dead fails the films that wait for it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from muss_builder.config import PipelineConfig, StageResources
from muss_builder.runtime.stage_base import Stage, StageReport, StageSetupError

PROBE_SECONDS = 1.0  # how often a restarting actor is asked whether it is back
PROBE_LIMIT = 300  # unanswered pings (about 5 minutes) before an actor is given up


def _call_stage(stage: Stage, work: Any, unit: Any) -> tuple[StageReport, Any]:
    stage.setup(work.config)
    return stage.call(work, unit)


def _set_up_stage(stage: Stage, config: PipelineConfig) -> None:
    stage.setup(config)


class StageActor:
    """One actor of a model stage's pool: the stage (and its model) set up once."""

    def __init__(self, stage: Stage, config: PipelineConfig) -> None:
        self.stage = stage
        stage.setup(config)

    def call(self, work: Any, unit: Any) -> tuple[StageReport, Any]:
        return self.stage.call(work, unit)

    def ping(self) -> bool:
        return True


@dataclass
class Submitted:
    """One call on its way: Ray references to its report and payload, and the actor it went
    to (None for a task)."""

    report: Any
    payload: Any
    actor: int | None = None


class Lane:
    """What the driver asks of a lane. ``checks`` are the Ray references it waits on besides
    the calls (a setup, pings); ``slots`` is how many calls can run at once (the monitor's
    utilisation)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.slots = 1.0

    def submit(self, work: Any, unit: Any) -> Submitted:
        raise NotImplementedError

    def done(self, call: Submitted) -> None:
        """``call`` has answered, whatever the answer."""

    def has_room(self) -> bool:
        raise NotImplementedError

    def call_lost(self, call: Submitted) -> None:
        """``call`` failed with a system error (its worker or actor was lost)."""

    def checks(self, now: float) -> list[Any]:
        return []

    def check_answered(self, ref: Any, now: float) -> None:
        """Take a check's answer; raise ``StageSetupError`` when the stage cannot start."""

    def unavailable(self) -> str | None:
        """Why no call will run here again, or None while one may."""
        return None

    def describe(self) -> dict:
        """What stats.json says of the lane besides its stage's resources."""
        return {}


class TaskLane(Lane):
    """A Ray task per call, as many at once as the cluster can run."""

    def __init__(self, stage: Stage, config: PipelineConfig, cpus: float, gpus: float) -> None:
        import ray

        super().__init__(stage)
        res = stage.resources(config)
        options = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus, "max_retries": 0}
        self.task = ray.remote(_call_stage).options(**options, num_returns=2)
        # a stage that asks for nothing is bounded by the CPUs anyway so that it never floods
        # the object store
        if res.num_gpus:
            share = gpus / res.num_gpus
        elif res.num_cpus:
            share = cpus / res.num_cpus
        else:
            share = cpus
        self.slots = float(max(1, math.floor(share)))
        self.capacity = max(1, int(self.slots))
        self.running = 0
        self.setup_check: Any = None  # a stage without a setup of its own has nothing to check
        if type(stage).setup is not Stage.setup:
            self.setup_check = ray.remote(_set_up_stage).options(**options).remote(stage, config)
        self._unchecked = self.setup_check is not None

    def submit(self, work: Any, unit: Any) -> Submitted:
        self.running += 1
        report, payload = self.task.remote(self.stage, work, unit)
        return Submitted(report, payload)

    def done(self, call: Submitted) -> None:
        self.running -= 1

    def has_room(self) -> bool:
        return not self._unchecked and self.running < self.capacity

    def checks(self, now: float) -> list[Any]:
        return [self.setup_check] if self._unchecked else []

    def check_answered(self, ref: Any, now: float) -> None:
        import ray
        from ray.exceptions import RayTaskError

        try:
            ray.get(ref)
        except RayTaskError as exc:
            raise StageSetupError(self.stage.name, ray_error_line(exc)) from exc
        self._unchecked = False


class ActorPoolLane(Lane):
    """A pool of actors, each holding the stage set up; a call goes to the least busy one."""

    def __init__(self, stage: Stage, config: PipelineConfig, cpus: float, gpus: float) -> None:
        import ray

        super().__init__(stage)
        res = stage.resources(config)
        cls = ray.remote(StageActor).options(
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
            max_restarts=-1,  # the pool survives a lost node
            max_task_retries=0,
            max_concurrency=1,
        )
        self.actors = [cls.remote(stage, config) for _ in range(pool_size(res, cpus, gpus))]
        n = len(self.actors)
        self.load = [0] * n
        self.per_actor = res.max_calls_per_actor
        self.slots = float(n)
        self.came_up = [False] * n  # answered once: a later setup failure is a restart's
        self.healthy = [False] * n  # takes calls; each actor is pinged at once (its setup)
        self.probes: dict[Any, int] = {}  # ping ref -> actor
        self.probe_due: dict[int, float] = dict.fromkeys(range(n), 0.0)  # actor -> when
        self.failed_probes = [0] * n
        self.dead: dict[int, str] = {}  # actor -> why it will not come back

    def submit(self, work: Any, unit: Any) -> Submitted:
        i = min((k for k in range(len(self.actors)) if self.healthy[k]), key=self.load.__getitem__)
        self.load[i] += 1
        report, payload = self.actors[i].call.options(num_returns=2).remote(work, unit)
        return Submitted(report, payload, i)

    def done(self, call: Submitted) -> None:
        assert call.actor is not None
        self.load[call.actor] -= 1

    def has_room(self) -> bool:
        return any(
            self.healthy[k] and self.load[k] < self.per_actor for k in range(len(self.actors))
        )

    def call_lost(self, call: Submitted) -> None:
        """Hold the actor's calls until it answers a ping."""
        assert call.actor is not None
        if self.healthy[call.actor]:
            self.healthy[call.actor] = False
            self.probe_due[call.actor] = 0.0

    def checks(self, now: float) -> list[Any]:
        for actor, due in list(self.probe_due.items()):
            if due <= now:
                del self.probe_due[actor]
                self.probes[self.actors[actor].ping.remote()] = actor
        return list(self.probes)

    def check_answered(self, ref: Any, now: float) -> None:
        import ray
        from ray.exceptions import RayError

        actor = self.probes.pop(ref)
        try:
            ray.get(ref)
        except RayError as exc:
            setup_failed = "creation task" in str(exc)  # Ray does not restart that
            if setup_failed and not self.came_up[actor]:
                raise StageSetupError(self.stage.name, ray_error_line(exc)) from exc
            self.failed_probes[actor] += 1
            if setup_failed or self.failed_probes[actor] >= PROBE_LIMIT:
                self.dead[actor] = f"{type(exc).__name__}: {ray_error_line(exc)}"
            else:  # still restarting (or its node not yet declared dead): ask again
                self.probe_due[actor] = now + PROBE_SECONDS
            return
        self.healthy[actor], self.came_up[actor], self.failed_probes[actor] = True, True, 0

    def unavailable(self) -> str | None:
        if len(self.dead) < len(self.actors):
            return None
        return next(iter(self.dead.values()))

    def describe(self) -> dict:
        return {"actors": len(self.actors)}


def make_lane(stage: Stage, config: PipelineConfig, cpus: float, gpus: float) -> Lane:
    lane = ActorPoolLane if stage.kind == "actor" else TaskLane
    return lane(stage, config, cpus, gpus)


def pool_size(res: StageResources, cpus: float, gpus: float) -> int:
    """Actors of a model stage: as configured, else enough to fill the GPUs it asks for,
    else one per 4 CPUs (a CPU model actor serves the decode of about that many workers)."""
    if res.actors:
        return res.actors
    if res.num_gpus > 0:
        return max(1, math.floor(gpus / res.num_gpus))
    return max(1, math.floor(cpus / 4))


def ray_error_line(exc: BaseException) -> str:
    """The line of a Ray error worth a films.parquet row: the Python error at the bottom of
    a traceback Ray carries (e.g. an actor's setup error), else the message's first line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    errors = [line for line in lines[1:] if re.match(r"^[A-Za-z_.]*(Error|Exception)\b.*:", line)]
    if not errors:
        return lines[0]
    # "muss_builder.core.models.ModelNotFoundError: ..." reads as the inline build's line does
    return re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=\w*(?:Error|Exception)\b)", "", errors[-1])
