"""Task spans behind the ``Tracing`` port: W3C trace context in, ``TRACEPARENT`` out.

Spans are parented explicitly (never through the ambient context), so that concurrent asyncio
tasks cannot pick up each other's spans and a span may end in a different task than it began.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from domain.telemetry import Attributes

TRACER_NAME = "worker"
TASK_SPAN_NAME = "persistent-worker-task"

_PROPAGATOR = TraceContextTextMapPropagator()


def parent_context(traceparent: str, tracestate: str) -> Context:
    """The context named by a W3C ``traceparent``/``tracestate`` pair (empty if invalid)."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    if traceparent and tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier, context=Context())


def trace_environment(span: Span) -> dict[str, str]:
    """``TRACEPARENT`` and, when non-empty, ``TRACESTATE`` naming ``span``."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=set_span_in_context(span, Context()))
    env = {}
    if carrier.get("traceparent"):
        env["TRACEPARENT"] = carrier["traceparent"]
        if carrier.get("tracestate"):
            env["TRACESTATE"] = carrier["tracestate"]
    return env


@contextmanager
def _ending(span: Span) -> Iterator[Span]:
    """End ``span`` on exit; an escaping error is recorded and marks it failed."""
    try:
        yield span
    except Exception as error:  # cancellation is no failure: it only ends the span
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        raise
    finally:
        span.end()


class OtelTaskTrace:
    """Implements ``domain.telemetry.TaskTrace`` with one SDK span and its children."""

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self._tracer = tracer
        self.span = span

    def environment(self) -> dict[str, str]:
        """``TRACEPARENT``/``TRACESTATE`` of the task span."""
        return trace_environment(self.span)

    @contextmanager
    def step(self, name: str, attributes: Attributes | None = None) -> Iterator[None]:
        """A child span of the task span, ended when the block exits."""
        child = self._tracer.start_span(
            name,
            context=set_span_in_context(self.span, Context()),
            attributes=dict(attributes or {}),
        )
        with _ending(child):
            yield

    def fail(self, message: str) -> None:
        """Mark the task span failed."""
        self.span.set_status(Status(StatusCode.ERROR, message))


class OtelTracing:
    """Implements ``domain.telemetry.Tracing`` with the tracer ``worker`` of a provider."""

    def __init__(self, tracer_provider: TracerProvider, *, version: str = "") -> None:
        self._tracer = tracer_provider.get_tracer(TRACER_NAME, version)

    @contextmanager
    def task(
        self, task_id: str, traceparent: str, tracestate: str, attributes: Attributes
    ) -> Iterator[OtelTaskTrace]:
        """The ``persistent-worker-task`` span, child of the controller's trace context."""
        span_attributes = dict(attributes)
        span_attributes["cirrus.task_id"] = task_id
        span = self._tracer.start_span(
            TASK_SPAN_NAME,
            context=parent_context(traceparent, tracestate),
            attributes=span_attributes,
        )
        with _ending(span):
            yield OtelTaskTrace(self._tracer, span)
