"""Telemetry that records nothing: the default when export is disabled, and in tests.

Pure null objects of the ``domain.telemetry`` ports, so that use cases can default to them
without importing an adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from domain.telemetry import Attributes, WorkerGauges


class NullMetrics:
    """Implements ``domain.telemetry.Metrics`` by ignoring every call."""

    def task_accepted(self) -> None:
        """Ignore."""

    def task_finished(self, isolation_kind: str, status: str, duration_seconds: float) -> None:
        """Ignore."""

    def task_queue_to_start(self, seconds: float) -> None:
        """Ignore."""

    def standby_hit(self, attributes: Attributes) -> None:
        """Ignore."""

    def standby_miss(self, attributes: Attributes) -> None:
        """Ignore."""

    def image_used(self, attributes: Attributes) -> None:
        """Ignore."""

    def controller_request(self, method: str, duration_seconds: float, error: str | None) -> None:
        """Ignore."""

    def publish_gauges(self, gauges: WorkerGauges) -> None:
        """Ignore."""


class NullTaskTrace:
    """Implements ``domain.telemetry.TaskTrace`` without spans; passes the caller's context on."""

    def __init__(self, traceparent: str = "", tracestate: str = "") -> None:
        self._traceparent = traceparent
        self._tracestate = tracestate

    def environment(self) -> dict[str, str]:
        """The controller's own trace context, so that the agent still joins its trace."""
        env = {}
        if self._traceparent:
            env["TRACEPARENT"] = self._traceparent
            if self._tracestate:
                env["TRACESTATE"] = self._tracestate
        return env

    @contextmanager
    def step(self, name: str, attributes: Attributes | None = None) -> Iterator[None]:
        """No span."""
        yield

    def fail(self, message: str) -> None:
        """Ignore."""


class NullTracing:
    """Implements ``domain.telemetry.Tracing`` without spans."""

    @contextmanager
    def task(
        self, task_id: str, traceparent: str, tracestate: str, attributes: Attributes
    ) -> Iterator[NullTaskTrace]:
        """A trace that records nothing."""
        yield NullTaskTrace(traceparent, tracestate)
