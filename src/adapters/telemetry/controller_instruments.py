"""The controller's OpenTelemetry instruments (meter ``controller``) and their setup.

Observable gauges report the latest published ``ControllerGauges``: the SDK calls them from its
export thread (or a ``/metrics`` request), so they never read the store. Ages are computed when
observed, from the time each queue's oldest task entered it. Export follows the worker's rules
(``adapters.telemetry.export``): OTLP over HTTP or gRPC from the standard ``OTEL_*`` variables,
quiet about a missing collector, and/or Prometheus text, with ``service.name=cirrus-controller``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from adapters.telemetry.export import ExportFailureLog, metric_exporter, silence_exporter_loggers
from adapters.telemetry.otlp_env import metric_export_interval, signal_enabled
from adapters.telemetry.setup import DEFAULT_SHUTDOWN_SECONDS, Telemetry
from domain.controller_telemetry import ControllerGauges
from domain.identity import go_arch

SERVICE_NAME = "cirrus-controller"
METER_NAME = "controller"
PREFIX = "org.cirruslabs.controller."

QUEUE_LENGTH = PREFIX + "queue.length"
QUEUE_OLDEST_AGE = PREFIX + "queue.oldest_age"
QUEUE_WAITING = PREFIX + "queue.waiting"
WORKERS_ONLINE = PREFIX + "workers.online"
WORKERS_PAUSED = PREFIX + "workers.paused"
WORKERS_OFFLINE = PREFIX + "workers.offline"
SCHEDULING_ASSIGNMENTS = PREFIX + "scheduling.assignments"
SCHEDULING_WAITS = PREFIX + "scheduling.waits"
TASKS_PICKUP_LATENCY = PREFIX + "tasks.pickup_latency"
POLL_WAKEUPS = PREFIX + "poll.wakeups"
"""Held polls woken to look at the queue again (absent until the first; not in METRIC_NAMES)."""
BLOBS_DELETED = PREFIX + "blobs.deleted"
"""Blobs deleted by retention, by reason (absent until the first; not in METRIC_NAMES)."""

METRIC_NAMES: tuple[str, ...] = (
    QUEUE_LENGTH,
    QUEUE_OLDEST_AGE,
    QUEUE_WAITING,
    WORKERS_ONLINE,
    WORKERS_PAUSED,
    WORKERS_OFFLINE,
    SCHEDULING_ASSIGNMENTS,
    SCHEDULING_WAITS,
    TASKS_PICKUP_LATENCY,
)

# Seconds from queued to claimed: a held poll answers in milliseconds, a busy pool in hours.
PICKUP_LATENCY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400,
)  # fmt: skip


class ControllerInstruments:
    """The controller's counters, histogram and observable gauges on one meter provider."""

    def __init__(
        self, meter_provider: MeterProvider, *, wall_clock: Callable[[], float], version: str = ""
    ) -> None:
        self._latest = ControllerGauges()
        self._wall_clock = wall_clock
        meter = meter_provider.get_meter(METER_NAME, version)
        self._assignments = meter.create_counter(
            SCHEDULING_ASSIGNMENTS,
            unit="{task}",
            description="Tasks handed to a worker, by worker.",
        )
        self._waits = meter.create_counter(
            SCHEDULING_WAITS,
            unit="{wait}",
            description="Times a queued task was seen waiting for a new reason, by reason.",
        )
        self._wakeups = meter.create_counter(
            POLL_WAKEUPS,
            unit="{wakeup}",
            description="Held worker polls woken to look for work again.",
        )
        self._blobs_deleted = meter.create_counter(
            BLOBS_DELETED,
            unit="{blob}",
            description="Blobs deleted by retention, by reason (expired, orphaned).",
        )
        self._pickup_latency = meter.create_histogram(
            TASKS_PICKUP_LATENCY,
            unit="s",
            description="Time from a task entering the queue until a worker claimed it.",
            explicit_bucket_boundaries_advisory=PICKUP_LATENCY_BUCKETS,
        )
        self._create_gauges(meter)

    def _create_gauges(self, meter: Meter) -> None:
        meter.create_observable_gauge(
            QUEUE_LENGTH,
            callbacks=[self._observe_length],
            unit="{task}",
            description="Tasks waiting for a worker, by the labels they ask for.",
        )
        meter.create_observable_gauge(
            QUEUE_OLDEST_AGE,
            callbacks=[self._observe_oldest_age],
            unit="s",
            description="Age of the oldest task waiting for a worker, by label set (0 if none).",
        )
        meter.create_observable_gauge(
            QUEUE_WAITING,
            callbacks=[self._observe_waiting],
            unit="{task}",
            description="Tasks waiting for a worker, by the reason they wait.",
        )
        for name, pick, description in (
            (WORKERS_ONLINE, _online, "Workers polling and accepting tasks."),
            (WORKERS_PAUSED, _paused, "Workers polling but paused."),
            (WORKERS_OFFLINE, _offline, "Registered workers that stopped polling."),
        ):
            meter.create_observable_gauge(
                name,
                callbacks=[self._worker_callback(pick)],
                unit="{worker}",
                description=description,
            )

    # --- what the controller calls ------------------------------------------------------------

    def task_assigned(self, worker: str, pickup_latency_seconds: float | None) -> None:
        """Count a task handed to ``worker`` and record how long it had waited (when known)."""
        self._assignments.add(1, {"worker": worker})
        if pickup_latency_seconds is not None:
            self._pickup_latency.record(max(0.0, pickup_latency_seconds))

    def task_waiting(self, reason: str) -> None:
        """Count a queued task seen waiting for ``reason`` (a category)."""
        self._waits.add(1, {"reason": reason})

    def poll_woken(self) -> None:
        """Count a held poll woken to look again."""
        self._wakeups.add(1)

    def blobs_deleted(self, reason: str, count: int) -> None:
        """Count blobs retention deleted for ``reason``."""
        self._blobs_deleted.add(count, {"reason": reason})

    def publish_gauges(self, gauges: ControllerGauges) -> None:
        """Replace the snapshot the observable gauges report (a reference swap: atomic)."""
        self._latest = gauges

    def latest(self) -> ControllerGauges:
        """The snapshot published last (empty before the first one)."""
        return self._latest

    # --- observable gauge callbacks (called from the SDK's threads) -----------------------

    def _observe_length(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(q.length, {"labels": q.labels}) for q in self._latest.queues]

    def _observe_oldest_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        now = self._wall_clock()
        return [
            Observation(
                0.0 if q.oldest_since is None else max(0.0, now - q.oldest_since),
                {"labels": q.labels},
            )
            for q in self._latest.queues
        ]

    def _observe_waiting(self, _options: CallbackOptions) -> Iterable[Observation]:
        waiting = self._latest.waiting_by_reason
        return [Observation(count, {"reason": reason}) for reason, count in sorted(waiting.items())]

    def _worker_callback(
        self, pick: Callable[[ControllerGauges], int]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(pick(self._latest))]

        return observe


def _online(gauges: ControllerGauges) -> int:
    return gauges.workers_online


def _paused(gauges: ControllerGauges) -> int:
    return gauges.workers_paused


def _offline(gauges: ControllerGauges) -> int:
    return gauges.workers_offline


@dataclass
class ControllerTelemetry:
    """The controller's metrics: instruments (or none), Prometheus text, and a bounded shutdown.

    Built without instruments it records nothing, like ``app.controller.metrics``'s null object.
    """

    instruments: ControllerInstruments | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)

    @property
    def prometheus_enabled(self) -> bool:
        """Whether ``prometheus_text`` has something to say (``/metrics`` is served)."""
        return self.telemetry.prometheus_registry is not None

    def prometheus_text(self) -> bytes:
        """The current metrics in the Prometheus text format (empty without Prometheus)."""
        return self.telemetry.prometheus_text()

    def task_assigned(self, worker: str, pickup_latency_seconds: float | None) -> None:
        """Count a task handed to ``worker``; record its pickup latency when known."""
        if self.instruments is not None:
            self.instruments.task_assigned(worker, pickup_latency_seconds)

    def task_waiting(self, reason: str) -> None:
        """Count a queued task seen waiting for ``reason``."""
        if self.instruments is not None:
            self.instruments.task_waiting(reason)

    def poll_woken(self) -> None:
        """Count a held poll woken to look again."""
        if self.instruments is not None:
            self.instruments.poll_woken()

    def blobs_deleted(self, reason: str, count: int) -> None:
        """Count blobs retention deleted for ``reason``."""
        if self.instruments is not None:
            self.instruments.blobs_deleted(reason, count)

    def publish_gauges(self, gauges: ControllerGauges) -> None:
        """Replace the snapshot the observable gauges report."""
        if self.instruments is not None:
            self.instruments.publish_gauges(gauges)

    def force_flush(self, timeout_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """Export what is pending now (blocking; for tests and diagnostics)."""
        self.telemetry.force_flush(timeout_seconds)

    def shutdown(self, timeout_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """Export what is pending and stop, in at most about ``timeout_seconds``."""
        self.telemetry.shutdown(timeout_seconds)

    async def aclose(self, timeout_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """``shutdown`` without blocking the event loop."""
        await self.telemetry.aclose(timeout_seconds)


def controller_resource(service_version: str) -> Resource:
    """SDK default and ``OTEL_RESOURCE_ATTRIBUTES`` attributes; ours win over the environment."""
    return Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.version": service_version,
            "host.arch": go_arch(platform.machine()),
        }
    )


def setup_controller_telemetry(
    service_version: str,
    *,
    enabled: bool = True,
    prometheus: bool = False,
    wall_clock: Callable[[], float],
    environ: Mapping[str, str] | None = None,
) -> ControllerTelemetry:
    """The controller's metrics: OTLP export when ``enabled``, and/or Prometheus text.

    With neither (or ``OTEL_SDK_DISABLED=true`` and no Prometheus) every call is a no-op.
    ``wall_clock`` is the controller's clock, which the queue ages are measured against.
    """
    env = os.environ if environ is None else environ
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    export = enabled and not disabled and signal_enabled("metrics", env)
    if not export and not prometheus:
        return ControllerTelemetry()
    telemetry = Telemetry()
    readers: list[MetricReader] = []
    if export:
        silence_exporter_loggers()
        exporter = metric_exporter(env, ExportFailureLog(metric_export_interval(env)))
        telemetry.metric_exporters = (exporter,)
        readers.append(PeriodicExportingMetricReader(exporter))
    if prometheus:
        # A private registry: the process-wide one would collect twice with a second setup.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
        telemetry.prometheus_registry = registry
    meter_provider = SdkMeterProvider(
        metric_readers=readers,
        resource=controller_resource(service_version),
        shutdown_on_exit=False,
    )
    if not export:
        # Prometheus only. The SDK's constructor reads OTEL_SDK_DISABLED from the process
        # environment and would hand out no-op meters, leaving /metrics empty; that variable
        # turns off what the SDK sends (export is off here), not the page asked for explicitly.
        meter_provider._disabled = False
    telemetry.meter_provider = meter_provider
    instruments = ControllerInstruments(
        meter_provider, wall_clock=wall_clock, version=service_version
    )
    return ControllerTelemetry(instruments, telemetry)
