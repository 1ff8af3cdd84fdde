"""OTLP exporters chosen from the standard ``OTEL_*`` variables, quiet about a missing collector.

Export is opt-in: a signal is exported only when ``OTEL_EXPORTER_OTLP_ENDPOINT``, its own
``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT``, or ``OTEL_<SIGNAL>_EXPORTER=otlp`` is set
(``otlp_env.signal_enabled``). OTLP over HTTP unless ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or the
per-signal variable) says ``grpc``.
Endpoints, headers, certificates, compression and timeouts are left to the SDK exporters, which
read the variables themselves; their defaults are ``http://localhost:4318`` (HTTP) and
``http://localhost:4317`` (gRPC). Only the exporters' public options are used. Exports
run in the SDK's background threads. A collector that is down costs one warning per export
interval, never an exception or a stall of the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from adapters.telemetry.otlp_env import GRPC, export_timeout, otlp_protocol

log = logging.getLogger("cirrus.telemetry")

# Loggers of the SDK's exporters: one line per retry and failure. ``ExportFailureLog`` speaks
# for them instead.
NOISY_LOGGERS = ("opentelemetry.exporter.otlp",)


def silence_exporter_loggers() -> None:
    """Mute the SDK exporters' own failure messages (our exporters log one line instead)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


class ExportFailureLog:
    """Logs failed exports: at most one warning per interval, and one line when export recovers."""

    def __init__(
        self,
        interval_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._logger = logger
        self._lock = threading.Lock()  # metric and span exports run in different threads
        self._last_warning: float | None = None
        self._failing = False

    def failed(self, signal: str, endpoint: str, detail: str) -> None:
        """Note a failed export; warn unless a warning was logged within the interval."""
        with self._lock:
            self._failing = True
            now = self._clock()
            if self._last_warning is not None and now - self._last_warning < self._interval:
                return
            self._last_warning = now
        self._logger.warning(
            "telemetry export of %s to %s failed (%s); the worker keeps running and retries "
            "(further failures within %g s are not logged)",
            signal,
            endpoint,
            detail,
            self._interval,
        )

    def succeeded(self, signal: str, endpoint: str) -> None:
        """Note a successful export; say so once after failures."""
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered:
            self._logger.info("telemetry export of %s to %s works again", signal, endpoint)


def _endpoint_of(exporter: object) -> str:
    return str(getattr(exporter, "_endpoint", "the OTLP collector"))


class ReportingMetricExporter(MetricExporter):
    """Delegates to an SDK metric exporter; failures go to an ``ExportFailureLog``."""

    def __init__(self, inner: MetricExporter, failures: ExportFailureLog) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self._failures = failures
        self.endpoint = _endpoint_of(inner)
        self._shut = threading.Event()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export, never raising; report the outcome."""
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as error:
            self._failures.failed("metrics", self.endpoint, f"{type(error).__name__}: {error}")
            return MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self._failures.succeeded("metrics", self.endpoint)
        else:
            self._failures.failed("metrics", self.endpoint, "no answer or a refusal")
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the inner exporter down once (aborting its retries)."""
        if not self._shut.is_set():
            self._shut.set()
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class ReportingSpanExporter(SpanExporter):
    """Delegates to an SDK span exporter; failures go to an ``ExportFailureLog``."""

    def __init__(self, inner: SpanExporter, failures: ExportFailureLog) -> None:
        self.inner = inner
        self._failures = failures
        self.endpoint = _endpoint_of(inner)
        self._shut = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export, never raising; report the outcome."""
        try:
            result = self.inner.export(spans)
        except Exception as error:
            self._failures.failed("traces", self.endpoint, f"{type(error).__name__}: {error}")
            return SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._failures.succeeded("traces", self.endpoint)
        else:
            self._failures.failed("traces", self.endpoint, "no answer or a refusal")
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the inner exporter down once (aborting its retries)."""
        if not self._shut.is_set():
            self._shut.set()
            self.inner.shutdown()


def metric_exporter(
    environ: Mapping[str, str], failures: ExportFailureLog
) -> ReportingMetricExporter:
    """The OTLP metric exporter the environment asks for, wrapped for quiet failures."""
    timeout = export_timeout("metrics", environ)
    inner: MetricExporter
    # Imported on demand: each exporter stack (gRPC above all) costs megabytes of memory.
    if otlp_protocol("metrics", environ) == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        inner = GrpcMetricExporter(timeout=timeout)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        inner = HttpMetricExporter(timeout=timeout)
    return ReportingMetricExporter(inner, failures)


def span_exporter(environ: Mapping[str, str], failures: ExportFailureLog) -> ReportingSpanExporter:
    """The OTLP span exporter the environment asks for, wrapped for quiet failures."""
    timeout = export_timeout("traces", environ)
    inner: SpanExporter
    if otlp_protocol("traces", environ) == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        inner = GrpcSpanExporter(timeout=timeout)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        inner = HttpSpanExporter(timeout=timeout)
    return ReportingSpanExporter(inner, failures)
