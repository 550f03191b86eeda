"""Executors run one function over many inputs and yield results as they complete.

``InlineExecutor`` runs in this process (debugging, tests); ``RayExecutor`` runs Ray tasks on a
local Ray it starts (and stops) or on an existing cluster, with a bounded number of tasks in
flight so memory stays flat however many films there are.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Ray's driver binds to loopback and reports no usage statistics on these machines.
_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# A cluster started here listens on loopback only, so its token auth adds nothing but a banner.
_LOCAL_RAY_ENV = {"RAY_AUTH_MODE": "disabled"}


@dataclass
class TaskFailure:
    """A task that could not return a result (worker died past its retries, task error)."""

    message: str


class InlineExecutor:
    name = "inline"

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple],
        *,
        num_cpus: float = 1.0,
        max_retries: int = 0,
    ) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(calls):
            try:
                yield i, fn(*args)
            except Exception as exc:  # same contract as Ray: a failure is a value
                yield i, TaskFailure(f"{type(exc).__name__}: {exc}")


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight
        self._connected_here = False

    def __enter__(self) -> RayExecutor:
        for key, value in _RAY_ENV.items():
            os.environ.setdefault(key, value)
        import ray

        self._connected_here = not ray.is_initialized()
        if self._connected_here:
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "configure_logging": False,
                "log_to_driver": False,
            }
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                for key, value in _LOCAL_RAY_ENV.items():
                    os.environ.setdefault(key, value)
                # "local", not None: None joins any cluster `ray start` left on this machine
                ray.init(
                    address="local",
                    num_cpus=self.num_cpus,
                    _node_ip_address="127.0.0.1",
                    **kwargs,
                )
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        # Disconnect from a cluster too (that leaves it running): a later build in this process
        # must not reuse a connection to a cluster that may be gone.
        if self._connected_here and ray.is_initialized():
            # a lost cluster may make this fail too: the build's own error says what happened
            with contextlib.suppress(Exception):
                ray.shutdown()

    def cluster_cpus(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def imap(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple],
        *,
        num_cpus: float = 1.0,
        max_retries: int = 0,
    ) -> Iterator[tuple[int, Any]]:
        import ray
        from ray.exceptions import RayError

        remote = ray.remote(fn).options(num_cpus=num_cpus, max_retries=max_retries)
        limit = self.max_in_flight or 2 * self.cluster_cpus()
        pending: dict[Any, int] = {}
        next_call = 0
        while next_call < len(calls) or pending:
            # Backpressure: never more than `limit` tasks submitted and unfinished.
            while next_call < len(calls) and len(pending) < limit:
                pending[remote.remote(*calls[next_call])] = next_call
                next_call += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    yield index, ray.get(ref)
                except RayError as exc:
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    yield index, TaskFailure(f"{type(exc).__name__}: {first_line}")


def make_executor(
    name: str,
    address: str | None = None,
    num_cpus: int | None = None,
    max_in_flight: int | None = None,
) -> InlineExecutor | RayExecutor:
    if name == "inline":
        return InlineExecutor()
    if name == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus, max_in_flight=max_in_flight)
    raise ValueError(f"unknown executor {name!r} (use 'ray' or 'inline')")
