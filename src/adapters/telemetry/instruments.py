"""The worker's OpenTelemetry instruments (meter ``worker``), behind the ``Metrics`` port.

Names and instrument kinds of the original are kept (spec §9.2); the histograms and
``standby.age`` are additions with the same prefix. Observable gauges read the latest published
``WorkerGauges``: the SDK calls them from its export thread, so they must never touch live state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from domain.telemetry import Attributes, WorkerGauges

log = logging.getLogger("cirrus.telemetry")

METER_NAME = "worker"
PREFIX = "org.cirruslabs.persistent_worker."

TASKS_COUNT = PREFIX + "tasks.count"
TASKS_RUNNING_COUNT = PREFIX + "tasks.running_count"
TASKS_DURATION = PREFIX + "tasks.duration"
TASKS_QUEUE_TO_START = PREFIX + "tasks.queue_to_start"
RESOURCES_USED_COUNT = PREFIX + "resources.used_count"
RESOURCES_UNUSED_COUNT = PREFIX + "resources.unused_count"
STANDBY_HIT = PREFIX + "standby.hit"
STANDBY_MISS = PREFIX + "standby.miss"
STANDBY_AGE = PREFIX + "standby.age"
IMAGES_TOTAL = PREFIX + "images.total"
CONTROLLER_REQUESTS_ERRORS = PREFIX + "controller.requests.errors"
CONTROLLER_REQUESTS_DURATION = PREFIX + "controller.requests.duration"

METRIC_NAMES: tuple[str, ...] = (
    TASKS_COUNT,
    TASKS_RUNNING_COUNT,
    TASKS_DURATION,
    TASKS_QUEUE_TO_START,
    RESOURCES_USED_COUNT,
    RESOURCES_UNUSED_COUNT,
    STANDBY_HIT,
    STANDBY_MISS,
    STANDBY_AGE,
    IMAGES_TOTAL,
    CONTROLLER_REQUESTS_ERRORS,
    CONTROLLER_REQUESTS_DURATION,
)

# Bucket boundaries in seconds, sized for what each histogram measures.
TASK_DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200)
QUEUE_TO_START_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
REQUEST_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GaugeBoard:
    """Holds the latest published ``WorkerGauges``; replacing a reference is atomic."""

    def __init__(self) -> None:
        self._latest = WorkerGauges()

    def publish(self, gauges: WorkerGauges) -> None:
        """Make ``gauges`` the snapshot the next observation reports."""
        self._latest = gauges

    def latest(self) -> WorkerGauges:
        """The snapshot published last (empty before the first one)."""
        return self._latest


class OtelMetrics:
    """Implements ``domain.telemetry.Metrics`` with instruments of one meter provider."""

    def __init__(
        self,
        meter_provider: MeterProvider,
        *,
        version: str = "",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.board = GaugeBoard()
        self._wall_clock = wall_clock
        meter = meter_provider.get_meter(METER_NAME, version)
        self._create_counters(meter)
        self._create_histograms(meter)
        self._create_gauges(meter)

    def _create_counters(self, meter: Meter) -> None:
        self._tasks = meter.create_counter(
            TASKS_COUNT, unit="{task}", description="Tasks accepted by the Persistent Worker."
        )
        self._standby_hit = meter.create_counter(
            STANDBY_HIT, unit="{task}", description="Tasks that were given the standby instance."
        )
        self._standby_miss = meter.create_counter(
            STANDBY_MISS,
            unit="{task}",
            description="Tasks not matching the standby instance.",
        )
        self._images = meter.create_counter(
            IMAGES_TOTAL, unit="{instance}", description="Instances obtained for tasks, by image."
        )
        self._request_errors = meter.create_counter(
            CONTROLLER_REQUESTS_ERRORS,
            unit="{request}",
            description="Controller calls that failed, by method and error code.",
        )

    def _create_histograms(self, meter: Meter) -> None:
        self._task_duration = meter.create_histogram(
            TASKS_DURATION,
            unit="s",
            description="Time from accepting a task until it stopped.",
            explicit_bucket_boundaries_advisory=TASK_DURATION_BUCKETS,
        )
        self._queue_to_start = meter.create_histogram(
            TASKS_QUEUE_TO_START,
            unit="s",
            description="Time from accepting a task until its first command started.",
            explicit_bucket_boundaries_advisory=QUEUE_TO_START_BUCKETS,
        )
        self._request_duration = meter.create_histogram(
            CONTROLLER_REQUESTS_DURATION,
            unit="s",
            description="Duration of controller calls, by method.",
            explicit_bucket_boundaries_advisory=REQUEST_DURATION_BUCKETS,
        )

    def _create_gauges(self, meter: Meter) -> None:
        meter.create_observable_gauge(
            TASKS_RUNNING_COUNT,
            callbacks=[self._observe_running],
            unit="{task}",
            description="Number of tasks running on the Persistent Worker.",
        )
        meter.create_observable_gauge(
            RESOURCES_UNUSED_COUNT,
            callbacks=[self._observe_unused],
            unit="{resource}",
            description="Amount of resources available for use on the Persistent Worker.",
        )
        meter.create_observable_gauge(
            RESOURCES_USED_COUNT,
            callbacks=[self._observe_used],
            unit="{resource}",
            description="Amount of resources used on the Persistent Worker.",
        )
        meter.create_observable_gauge(
            STANDBY_AGE,
            callbacks=[self._observe_standby_age],
            unit="s",
            description="Age of the standby instance waiting for a task.",
        )

    # --- the port ------------------------------------------------------------------------

    def task_accepted(self) -> None:
        """Count an accepted task."""
        self._tasks.add(1)

    def task_finished(self, isolation_kind: str, status: str, duration_seconds: float) -> None:
        """Record a finished task's duration by isolation and status."""
        self._task_duration.record(
            max(0.0, duration_seconds), {"isolation": isolation_kind, "status": status}
        )

    def task_queue_to_start(self, seconds: float) -> None:
        """Record the time a task waited before its first command."""
        self._queue_to_start.record(max(0.0, seconds))

    def standby_hit(self, attributes: Attributes) -> None:
        """Count a standby hit."""
        self._standby_hit.add(1, dict(attributes))

    def standby_miss(self, attributes: Attributes) -> None:
        """Count a standby miss."""
        self._standby_miss.add(1, dict(attributes))

    def image_used(self, attributes: Attributes) -> None:
        """Count an instance obtained for a task."""
        self._images.add(1, dict(attributes))

    def controller_request(self, method: str, duration_seconds: float, error: str | None) -> None:
        """Record a controller call's duration, and count it when it failed."""
        self._request_duration.record(max(0.0, duration_seconds), {"method": method})
        if error is not None:
            self._request_errors.add(1, {"method": method, "code": error})

    def publish_gauges(self, gauges: WorkerGauges) -> None:
        """Replace the snapshot the observable gauges report."""
        self.board.publish(gauges)

    # --- observable gauge callbacks (called from the SDK's threads) -----------------------

    def _observe_running(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.board.latest().running_tasks)]

    def _observe_used(self, _options: CallbackOptions) -> Iterable[Observation]:
        used = self.board.latest().resources_used
        return [Observation(amount, {"name": name}) for name, amount in sorted(used.items())]

    def _observe_unused(self, _options: CallbackOptions) -> Iterable[Observation]:
        unused = self.board.latest().resources_unused
        return [Observation(amount, {"name": name}) for name, amount in sorted(unused.items())]

    def _observe_standby_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        since = self.board.latest().standby_since
        if since is None:
            return []
        return [Observation(max(0.0, self._wall_clock() - since))]
