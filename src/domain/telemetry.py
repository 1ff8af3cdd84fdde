"""Telemetry ports: the metrics and traces the worker reports, and its readiness rule.

The application calls ``Metrics`` and ``Tracing`` at fixed points of a task's life; adapters turn
the calls into OpenTelemetry instruments and spans (or do nothing). Observable gauges never read
the worker's live state: the application publishes an immutable ``WorkerGauges`` whenever it
changes, and the exporters' threads read the latest one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from domain.protocol import frozen_float_map

# Instance attributes as ``domain.isolation.instance_attributes`` returns them.
Attributes = Mapping[str, str | float]

# A controller answers within this many poll intervals, or the worker is not ready.
READY_POLL_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class WorkerGauges:
    """What the observable gauges report, as of one moment.

    ``standby_since`` is the wall-clock time (seconds since the epoch) at which the current standby
    instance became ready, or ``None`` without one; its age is computed when it is observed.
    """

    running_tasks: int = 0
    resources_used: Mapping[str, float] = field(default_factory=frozen_float_map)
    resources_unused: Mapping[str, float] = field(default_factory=frozen_float_map)
    standby_since: float | None = None

    def __post_init__(self) -> None:
        # Copies, so that a caller mutating its dict later cannot change a published snapshot.
        object.__setattr__(self, "resources_used", frozen_float_map(self.resources_used))
        object.__setattr__(self, "resources_unused", frozen_float_map(self.resources_unused))


class Metrics(Protocol):
    """The worker's counters and histograms; every method returns at once and never raises."""

    def task_accepted(self) -> None:
        """A task was accepted (not a duplicate), before its instance is created."""
        ...

    def task_finished(self, isolation_kind: str, status: str, duration_seconds: float) -> None:
        """A task ended: ``status`` is ``completed``, ``failed``, ``aborted`` or ``refused``."""
        ...

    def task_queue_to_start(self, seconds: float) -> None:
        """Seconds from a task's acceptance until its first command starts."""
        ...

    def standby_hit(self, attributes: Attributes) -> None:
        """A task was handed the standby instance described by ``attributes``."""
        ...

    def standby_miss(self, attributes: Attributes) -> None:
        """A task did not match the standby instance described by ``attributes``."""
        ...

    def image_used(self, attributes: Attributes) -> None:
        """A task's instance (new or standby) was obtained."""
        ...

    def controller_request(self, method: str, duration_seconds: float, error: str | None) -> None:
        """One controller call ended; ``error`` is its error code (Twirp code), None on success."""
        ...

    def publish_gauges(self, gauges: WorkerGauges) -> None:
        """Replace the snapshot the observable gauges report."""
        ...


class TaskTrace(Protocol):
    """The ``persistent-worker-task`` span of one task, with its child spans."""

    def environment(self) -> dict[str, str]:
        """``TRACEPARENT`` (and ``TRACESTATE`` when set) naming this task's span, for the agent."""
        ...

    def step(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[None]:
        """A child span around one step (instance creation, a command, cleanup)."""
        ...

    def fail(self, message: str) -> None:
        """Mark the task's span as failed with ``message``."""
        ...


class Tracing(Protocol):
    """Starts task spans parented on the controller's W3C trace context."""

    def task(
        self, task_id: str, traceparent: str, tracestate: str, attributes: Attributes
    ) -> AbstractContextManager[TaskTrace]:
        """The span of task ``task_id``; it ends when the context manager exits."""
        ...


class PollHealth(Protocol):
    """What readiness needs to know about one upstream controller."""

    @property
    def registered(self) -> bool:
        """Whether the worker holds a session with this controller."""
        ...

    @property
    def last_poll_time(self) -> float | None:
        """Wall-clock seconds of the last successful poll; None before the first one."""
        ...

    @property
    def poll_interval_seconds(self) -> float:
        """The current poll interval."""
        ...


def upstream_ready(upstream: PollHealth, now: float) -> bool:
    """Registered, and polled successfully within ``READY_POLL_INTERVALS`` intervals of ``now``."""
    if not upstream.registered or upstream.last_poll_time is None:
        return False
    return now - upstream.last_poll_time <= READY_POLL_INTERVALS * upstream.poll_interval_seconds


def worker_ready(upstreams: Iterable[PollHealth], now: float) -> bool:
    """Whether the worker has at least one upstream and every upstream is ready."""
    states = [upstream_ready(upstream, now) for upstream in upstreams]
    return bool(states) and all(states)
