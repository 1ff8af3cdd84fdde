"""Build the worker's telemetry: providers, readers, exporters, and a bounded shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.telemetry.noop import NullMetrics, NullTracing
from adapters.telemetry.otlp_env import metric_export_interval, signal_enabled
from domain.identity import go_arch
from domain.telemetry import Metrics, Tracing

# The OpenTelemetry SDK (about 4 MB resident with its dependencies) is imported by
# ``setup_telemetry`` only when something is exported or served: by default a worker exports
# nothing, and its telemetry ports are no-ops.
if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from adapters.telemetry.export import ReportingMetricExporter, ReportingSpanExporter

log = logging.getLogger("cirrus.telemetry")

SERVICE_NAME = "cirrus-worker"
DEFAULT_SHUTDOWN_SECONDS = 3.0
# After the deadline, exporters are shut down to abort their retries; then wait this much more.
ABORT_GRACE_SECONDS = 0.5


def worker_resource(service_version: str) -> Resource:
    """SDK default and ``OTEL_RESOURCE_ATTRIBUTES`` attributes; ours win over the environment."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.version": service_version,
            "host.arch": go_arch(platform.machine()),
        }
    )


@dataclass
class Telemetry:
    """The worker's metrics and tracing ports, and what must be shut down at exit."""

    metrics: Metrics = field(default_factory=NullMetrics)
    tracing: Tracing = field(default_factory=NullTracing)
    meter_provider: MeterProvider | None = None
    tracer_provider: TracerProvider | None = None
    prometheus_registry: CollectorRegistry | None = None
    metric_exporters: Sequence[ReportingMetricExporter] = ()
    span_exporters: Sequence[ReportingSpanExporter] = ()

    def prometheus_text(self) -> bytes:
        """The current metrics in the Prometheus text format (empty without Prometheus)."""
        if self.prometheus_registry is None:
            return b""
        from prometheus_client import generate_latest

        return generate_latest(self.prometheus_registry)

    def force_flush(self, timeout_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """Export what is pending now (blocking; for tests and diagnostics)."""
        millis = int(timeout_seconds * 1000)
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(millis)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(millis)

    def shutdown(self, timeout_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """Export what is pending and stop, in at most about ``timeout_seconds``."""
        steps: list[Callable[[], object]] = []
        if self.tracer_provider is not None:
            steps.append(self.tracer_provider.shutdown)
        if self.meter_provider is not None:
            meter_provider = self.meter_provider
            steps.append(lambda: meter_provider.shutdown(timeout_millis=timeout_seconds * 1000))
        self.tracer_provider = None
        self.meter_provider = None
        if not steps:
            return
        deadline = time.monotonic() + timeout_seconds
        threads = [
            threading.Thread(target=_quietly(step), name="telemetry-shutdown", daemon=True)
            for step in steps
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            # A collector that does not answer: abort the exporters' retries and give up.
            # Info only: the failed export itself already warned (at most once per interval).
            log.info("telemetry shutdown: pending exports abandoned after %g s", timeout_seconds)
            for metrics in self.metric_exporters:
                _quietly(metrics.shutdown)()
            for spans in self.span_exporters:
                _quietly(spans.shutdown)()
            for thread in threads:
                thread.join(ABORT_GRACE_SECONDS)

    async def aclose(self, timeout_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """``shutdown`` without blocking the event loop."""
        await asyncio.to_thread(self.shutdown, timeout_seconds)


def _quietly(step: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            step()
        except Exception:
            log.debug("telemetry shutdown step failed", exc_info=True)

    return run


def _sdk_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def setup_telemetry(
    service_version: str, *, enabled: bool = True, prometheus: bool = False
) -> Telemetry:
    """Metrics and traces for the worker: OTLP export when ``enabled``, and/or Prometheus text.

    A signal is exported only when the environment names a collector for it (``signal_enabled``).
    ``OTEL_SDK_DISABLED=true`` turns OTLP export off, never the Prometheus text. With neither,
    every port call is a no-op.
    """
    environ = os.environ
    # Opt-in: without an OTLP endpoint (or exporter) for some signal, nothing is exported.
    wanted = signal_enabled("metrics", environ) or signal_enabled("traces", environ)
    export = enabled and wanted and not _sdk_disabled(environ)
    if not export and not prometheus:
        return Telemetry()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from adapters.telemetry.export import (
        ExportFailureLog,
        metric_exporter,
        silence_exporter_loggers,
        span_exporter,
    )
    from adapters.telemetry.instruments import OtelMetrics
    from adapters.telemetry.tracing import OtelTracing

    resource = worker_resource(service_version)
    telemetry = Telemetry()
    readers: list[MetricReader] = []
    failures = ExportFailureLog(metric_export_interval(environ))
    if export:
        silence_exporter_loggers()
    if export and signal_enabled("metrics", environ):
        exporter = metric_exporter(environ, failures)
        telemetry.metric_exporters = (exporter,)
        readers.append(PeriodicExportingMetricReader(exporter))
    if prometheus:
        # A private registry: the process-wide one would collect twice with a second setup.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
        telemetry.prometheus_registry = registry
    meter_provider = MeterProvider(
        metric_readers=readers, resource=resource, shutdown_on_exit=False
    )
    if not export:
        # Prometheus only. The SDK's constructor reads OTEL_SDK_DISABLED too and would hand out
        # no-op meters, leaving /metrics empty; but that variable turns off what the SDK sends
        # (export is off here), while /metrics was asked for explicitly with --listen.
        meter_provider._disabled = False
    telemetry.meter_provider = meter_provider
    telemetry.metrics = OtelMetrics(meter_provider, version=service_version)
    if export and signal_enabled("traces", environ):
        spans = span_exporter(environ, failures)
        telemetry.span_exporters = (spans,)
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
        telemetry.tracer_provider = tracer_provider
        telemetry.tracing = OtelTracing(tracer_provider, version=service_version)
    return telemetry
