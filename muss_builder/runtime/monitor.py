"""Per-stage counters for the live view and stats.json: queue depths, throughput, busy share.

Busy share is the fraction of the run's wall time during which at least one call of the stage
was running (the union of its calls' intervals), so a stage at 1.0 never waited for work and
a stage near 0 was starved or cheap. Utilisation divides the stage's call-seconds by what its
slots could have done (``slots`` x wall): an actor pool at 0.3 holds its GPUs idle 70 % of
the time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class StageCounters:
    name: str
    slots: float = 1.0  # calls the stage can run at once (actors x 1, or CPUs / num_cpus)
    queued: int = 0  # waiting in the driver for a slot
    running: int = 0  # submitted to Ray, not yet reported
    calls: int = 0
    call_seconds: float = 0.0
    film_seconds: float = 0.0  # footage the finished calls covered
    intervals: list[tuple[float, float]] = field(default_factory=list)

    def busy_seconds(self) -> float:
        """Length of the union of the calls' intervals."""
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.intervals):
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        return total


class StageMonitor:
    def __init__(self, stage_names: list[str], slots: dict[str, float] | None = None) -> None:
        slots = slots or {}
        self.stages = {n: StageCounters(n, slots.get(n, 1.0)) for n in stage_names}
        self.started = time.time()

    def wall(self) -> float:
        return max(1e-9, time.time() - self.started)

    def finished_call(self, stage: str, started: float, finished: float, film_seconds: float):
        c = self.stages[stage]
        c.calls += 1
        c.call_seconds += max(0.0, finished - started)
        c.film_seconds += film_seconds
        c.intervals.append((started, finished))

    def live(self) -> dict[str, dict[str, float]]:
        """What the progress view shows per stage right now."""
        wall = self.wall()
        return {
            n: {
                "queued": c.queued,
                "running": c.running,
                "film_seconds_per_second": c.film_seconds / wall,
            }
            for n, c in self.stages.items()
        }

    def summary(self, wall: float | None = None) -> dict[str, dict[str, float | int | None]]:
        """Per-stage figures for stats.json (``wall`` defaults to the time since start)."""
        wall = wall or self.wall()
        out = {}
        for n, c in self.stages.items():
            busy = c.busy_seconds()
            out[n] = {
                "calls": c.calls,
                "call_seconds": round(c.call_seconds, 3),
                "busy_share": _significant(min(1.0, busy / wall)),
                "utilisation": _significant(c.call_seconds / (c.slots * wall)) if c.slots else None,
                "slots": c.slots,
                "film_hours_per_wall_hour": round(c.film_seconds / wall, 3),
                "film_hours_per_busy_hour": round(c.film_seconds / busy, 3) if busy else None,
            }
        return out


def _significant(share: float) -> float:
    # 4 significant digits, not 4 decimals: a stage busy for milliseconds of a long run (the
    # facts captioner) must not read as never busy
    return float(f"{share:.4g}")
