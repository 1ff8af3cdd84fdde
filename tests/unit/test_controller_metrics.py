"""The controller's metrics: wait reasons, gauges of a queue, and a scripted scheduling sequence."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
    Sum,
)

from adapters.telemetry import controller_instruments as names
from adapters.telemetry.controller_instruments import (
    ControllerInstruments,
    ControllerTelemetry,
    setup_controller_telemetry,
)
from app.controller.long_poll import PollWaiters
from app.controller.metrics import (
    WAIT_CATEGORIES,
    NullControllerMetrics,
    controller_gauges,
    labels_key,
)
from app.controller.scheduler_service import SchedulerService
from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.controller_telemetry import ControllerGauges, ControllerMetrics, QueueGauge
from domain.isolation import ContainerIsolation
from domain.policy import AllowedIsolations, NonePolicy, SecurityPolicy
from domain.scheduling import QueuedTask, WaitKind, WorkerView, why_pending
from domain.store import TaskRecord
from tests.unit.controller.fake_store import FakeStore

START = 1_700_000_000.0
OFFLINE_AFTER = 60.0


class FakeClock:
    """Wall and monotonic time that move only when told to."""

    def __init__(self, now: float = START) -> None:
        self.wall = now

    def now(self) -> float:
        """The fake wall time."""
        return self.wall

    def monotonic(self) -> float:
        """The same fake time."""
        return self.wall

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.wall += seconds


def read(reader: InMemoryMetricReader) -> dict[str, Metric]:
    """Every metric of the meter ``controller``, by name."""
    data = reader.get_metrics_data()
    found: dict[str, Metric] = {}
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == names.METER_NAME
            for metric in scope.metrics:
                found[metric.name] = metric
    return found


def points(metric: Metric, key: str) -> dict[str, float]:
    """A gauge's or sum's values by the value of attribute ``key`` ("" when it has none)."""
    assert isinstance(metric.data, Gauge | Sum)
    values: dict[str, float] = {}
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint)
        values[str((point.attributes or {}).get(key, ""))] = point.value
    return values


def histogram(metric: Metric) -> HistogramDataPoint:
    """The one data point of a histogram without attributes."""
    assert isinstance(metric.data, Histogram)
    [point] = metric.data.data_points
    return point


@dataclass
class Harness:
    """A scheduler on an in-memory store, metrics read back through an in-memory reader."""

    store: FakeStore
    clock: FakeClock
    scheduler: SchedulerService
    reader: InMemoryMetricReader

    async def submit(self, *tasks: TaskSpec) -> list[TaskRecord]:
        """Store a build and queue its tasks, as the API does."""
        build = await self.store.create_build(BuildSpec(tasks=tasks))
        await self.scheduler.advance_build(build.id)
        await self.scheduler.build_submitted()
        return list(build.tasks)

    async def register(self, name: str, labels: Mapping[str, str]) -> None:
        """Register a worker (seen now)."""
        await self.store.upsert_worker(name, {"name": name, **labels}, {}, "hash-" + name)

    async def refresh(self) -> dict[str, Metric]:
        """Run one refresh and return what the reader collects."""
        refresher = self.scheduler.metrics_refresher
        assert refresher is not None
        await refresher.refresh()
        return read(self.reader)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """A fresh harness on the in-memory store; the provider is shut down afterwards."""
    clock = FakeClock()
    store = FakeStore(clock)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    metrics = ControllerTelemetry(ControllerInstruments(provider, wall_clock=clock.now))
    scheduler = SchedulerService(
        store, clock, PollWaiters(), offline_after_seconds=OFFLINE_AFTER, metrics=metrics
    )
    try:
        yield Harness(store, clock, scheduler, reader)
    finally:
        provider.shutdown()


def gpu_task(name: str = "train") -> TaskSpec:
    """A task asking for a GPU worker."""
    return TaskSpec(name=name, labels={"gpu": "yes", "os": "linux"})


# --- wait reasons -------------------------------------------------------------------------------


def _reason(task: QueuedTask, *workers: WorkerView) -> str:
    return why_pending(task, workers).kind.value


def test_every_sentence_of_pending_reason_has_its_own_category() -> None:
    plain = QueuedTask("1")
    gpu = QueuedTask("2", labels={"gpu": "yes"})
    heavy = QueuedTask("3", resources={"slots": 2.0})
    worker = WorkerView("w", resources_total={"slots": 1.0})
    found = {
        _reason(plain): WaitKind.NO_WORKERS.value,
        _reason(gpu, worker): WaitKind.NO_WORKER_WITH_LABELS.value,
        _reason(plain, WorkerView("w", online=False)): WaitKind.WORKERS_OFFLINE.value,
        _reason(plain, WorkerView("w", paused=True)): WaitKind.WORKERS_PAUSED.value,
        _reason(
            plain, WorkerView("a", paused=True), WorkerView("b", online=False)
        ): WaitKind.WORKERS_PAUSED.value,
        _reason(plain, WorkerView("w", running_task_ids=("9",))): WaitKind.WORKERS_BUSY.value,
        _reason(plain, WorkerView("w")): WaitKind.WAITING_FOR_POLL.value,
        _reason(heavy, worker): WaitKind.NO_WORKER_WITH_RESOURCES.value,
        _reason(
            QueuedTask("4", resources={"slots": 1.0}),
            WorkerView(
                "w",
                resources_total={"slots": 1.0},
                resources_in_use={"slots": 1.0},
                running_task_ids=("9",),
            ),
        ): WaitKind.NOT_ENOUGH_RESOURCES.value,
        _reason(
            QueuedTask("5", isolation=ContainerIsolation(image="alpine")),
            WorkerView("w", policy=SecurityPolicy(AllowedIsolations(none=NonePolicy()))),
        ): WaitKind.NO_WORKER_POLICY.value,
    }

    assert all(category == expected for category, expected in found.items()), found
    assert set(found.values()) == set(WAIT_CATEGORIES)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=5))
def test_a_label_set_reads_the_same_whatever_its_order(labels: dict[str, str]) -> None:
    reversed_labels = dict(reversed(list(labels.items())))

    assert labels_key(labels) == labels_key(reversed_labels)
    assert labels_key(labels).count("=") >= len(labels)


def test_a_label_set_is_sorted_key_value_pairs() -> None:
    assert labels_key({"os": "linux", "gpu": "yes"}) == "gpu=yes,os=linux"
    assert labels_key({}) == ""


# --- gauges of a queue --------------------------------------------------------------------------


def _queued(task_id: str, labels: Mapping[str, str], since: float) -> TaskRecord:
    spec = TaskSpec(name="t" + task_id, labels=labels)
    return TaskRecord(task_id, "1", spec.name, TaskStatus.SCHEDULED, spec, 0, since, since)


def test_gauges_group_the_queue_by_label_set_with_its_oldest_task() -> None:
    queued = [
        _queued("1", {"os": "linux"}, 30.0),
        _queued("2", {"os": "linux"}, 10.0),
        _queued("3", {"gpu": "yes"}, 20.0),
    ]
    workers = [
        WorkerView("a"),
        WorkerView("b", paused=True),
        WorkerView("c", online=False, paused=True),
        WorkerView("d", online=False),
    ]

    gauges = controller_gauges(queued, workers, {"1": "x", "2": "x", "3": "y"}, ["mac=1"])

    assert gauges.queues == (
        QueueGauge("gpu=yes", 1, 20.0),
        QueueGauge("mac=1", 0, None),
        QueueGauge("os=linux", 2, 10.0),
    )
    assert gauges.waiting_by_reason["x"] == 2
    assert gauges.waiting_by_reason["y"] == 1
    assert gauges.waiting_by_reason[WaitKind.WORKERS_BUSY.value] == 0
    assert (gauges.workers_online, gauges.workers_paused, gauges.workers_offline) == (1, 1, 2)


# --- instruments --------------------------------------------------------------------------------


@pytest.fixture
def instruments() -> Iterator[tuple[ControllerInstruments, InMemoryMetricReader, FakeClock]]:
    """Instruments on an in-memory reader, with a fake wall clock."""
    clock = FakeClock()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield ControllerInstruments(provider, wall_clock=clock.now), reader, clock
    provider.shutdown()


def test_instruments_have_units_and_the_gauges_report_the_published_snapshot(
    instruments: tuple[ControllerInstruments, InMemoryMetricReader, FakeClock],
) -> None:
    metrics, reader, clock = instruments
    metrics.publish_gauges(
        ControllerGauges(
            queues=(QueueGauge("os=linux", 3, START - 40), QueueGauge("gpu=yes", 0, None)),
            waiting_by_reason={"workers_busy": 3},
            workers_online=2,
            workers_paused=1,
            workers_offline=4,
        )
    )
    metrics.task_assigned("w1", 2.0)
    metrics.task_assigned("w1", None)
    metrics.task_waiting("workers_busy")
    clock.advance(5)

    found = read(reader)

    assert set(found) == set(names.METRIC_NAMES)
    assert points(found[names.QUEUE_LENGTH], "labels") == {"os=linux": 3, "gpu=yes": 0}
    assert points(found[names.QUEUE_OLDEST_AGE], "labels") == {"os=linux": 45.0, "gpu=yes": 0}
    assert points(found[names.QUEUE_WAITING], "reason") == {"workers_busy": 3}
    assert points(found[names.WORKERS_ONLINE], "") == {"": 2}
    assert points(found[names.WORKERS_PAUSED], "") == {"": 1}
    assert points(found[names.WORKERS_OFFLINE], "") == {"": 4}
    assert points(found[names.SCHEDULING_ASSIGNMENTS], "worker") == {"w1": 2}
    assert points(found[names.SCHEDULING_WAITS], "reason") == {"workers_busy": 1}
    latency = histogram(found[names.TASKS_PICKUP_LATENCY])
    assert (latency.count, latency.sum) == (1, 2.0)
    units = {name: metric.unit for name, metric in found.items()}
    assert units[names.QUEUE_OLDEST_AGE] == units[names.TASKS_PICKUP_LATENCY] == "s"
    assert units[names.QUEUE_LENGTH] == "{task}"
    assert units[names.WORKERS_ONLINE] == "{worker}"


def test_a_negative_pickup_latency_is_recorded_as_zero(
    instruments: tuple[ControllerInstruments, InMemoryMetricReader, FakeClock],
) -> None:
    metrics, reader, _clock = instruments
    metrics.task_assigned("w1", -3.0)

    latency = histogram(read(reader)[names.TASKS_PICKUP_LATENCY])

    assert (latency.count, latency.sum) == (1, 0.0)


# --- a scripted scheduling sequence -------------------------------------------------------------


async def test_a_task_no_worker_can_take_is_queued_under_its_labels_and_counted_once(
    harness: Harness,
) -> None:
    await harness.register("plain", {"os": "linux"})
    [task] = await harness.submit(gpu_task())
    harness.clock.advance(30)

    first = await harness.refresh()
    second = await harness.refresh()

    assert points(second[names.QUEUE_LENGTH], "labels") == {"gpu=yes,os=linux": 1}
    assert points(second[names.QUEUE_OLDEST_AGE], "labels") == {"gpu=yes,os=linux": 30.0}
    assert points(first[names.SCHEDULING_WAITS], "reason") == {"no_worker_with_labels": 1}
    assert points(second[names.SCHEDULING_WAITS], "reason") == {"no_worker_with_labels": 1}
    assert points(second[names.QUEUE_WAITING], "reason")["no_worker_with_labels"] == 1
    assert points(second[names.WORKERS_ONLINE], "") == {"": 1}
    assert task.status is TaskStatus.SCHEDULED


async def test_a_new_reason_counts_again_and_an_assignment_records_the_wait(
    harness: Harness,
) -> None:
    await harness.register("gpu", {"gpu": "yes", "os": "linux"})
    await harness.scheduler.set_disabled("gpu", True)
    [task] = await harness.submit(gpu_task())
    paused = await harness.refresh()
    await harness.scheduler.set_disabled("gpu", False)
    harness.clock.advance(12)
    await harness.store.check_in_worker("gpu", "hash-gpu", {}, [], queue_limit=1)

    claimed = await harness.scheduler.claim_for("gpu")
    after = await harness.refresh()

    assert points(paused[names.WORKERS_PAUSED], "") == {"": 1}
    assert points(paused[names.SCHEDULING_WAITS], "reason") == {"workers_paused": 1}
    assert [record.id for record in claimed] == [task.id]
    assert points(after[names.SCHEDULING_ASSIGNMENTS], "worker") == {"gpu": 1}
    latency = histogram(after[names.TASKS_PICKUP_LATENCY])
    assert (latency.count, latency.sum) == (1, 12.0)
    # The emptied queue reports 0 rather than vanishing; the old reason is not counted again.
    assert points(after[names.QUEUE_LENGTH], "labels") == {"gpu=yes,os=linux": 0}
    assert points(after[names.QUEUE_OLDEST_AGE], "labels") == {"gpu=yes,os=linux": 0.0}
    assert points(after[names.SCHEDULING_WAITS], "reason") == {"workers_paused": 1}
    assert points(after[names.WORKERS_ONLINE], "") == {"": 1}


async def test_a_silent_worker_counts_as_offline_and_its_queue_waits_for_it(
    harness: Harness,
) -> None:
    await harness.register("gpu", {"gpu": "yes", "os": "linux"})
    await harness.submit(gpu_task())
    harness.clock.advance(OFFLINE_AFTER + 1)

    found = await harness.refresh()

    assert points(found[names.WORKERS_OFFLINE], "") == {"": 1}
    assert points(found[names.WORKERS_ONLINE], "") == {"": 0}
    assert points(found[names.SCHEDULING_WAITS], "reason") == {"workers_offline": 1}


async def test_scheduling_without_metrics_has_no_refresher() -> None:
    clock = FakeClock()
    store = FakeStore(clock)
    scheduler = SchedulerService(store, clock, PollWaiters(), offline_after_seconds=60)
    await store.upsert_worker("w", {"name": "w"}, {}, "hash")
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="t"),)))
    await scheduler.build_submitted()

    claimed = await scheduler.claim_for("w")

    assert scheduler.metrics_refresher is None
    assert [record.id for record in claimed] == [build.tasks[0].id]


# --- setup --------------------------------------------------------------------------------------


def test_setup_without_export_or_prometheus_records_nothing() -> None:
    telemetry = setup_controller_telemetry("1.0", enabled=False, wall_clock=lambda: START)

    telemetry.task_assigned("w", 1.0)
    telemetry.publish_gauges(ControllerGauges())

    assert telemetry.instruments is None
    assert not telemetry.prometheus_enabled
    assert telemetry.prometheus_text() == b""


def test_setup_honours_the_sdk_switch_a_metrics_exporter_of_none_and_a_missing_endpoint() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    for environ in (
        {**endpoint, "OTEL_SDK_DISABLED": "true"},
        {**endpoint, "OTEL_METRICS_EXPORTER": "none"},
        {},
    ):
        telemetry = setup_controller_telemetry(
            "1.0", enabled=True, wall_clock=lambda: START, environ=environ
        )
        assert telemetry.instruments is None, environ


def test_prometheus_text_names_the_controller_service_and_its_metrics() -> None:
    telemetry = setup_controller_telemetry(
        "1.2.3", enabled=False, prometheus=True, wall_clock=lambda: START
    )
    try:
        telemetry.publish_gauges(
            ControllerGauges(queues=(QueueGauge("os=linux", 2, START - 7),), workers_online=1)
        )
        telemetry.task_assigned("w1", 0.2)
        telemetry.task_waiting("workers_busy")

        text = telemetry.prometheus_text().decode()
    finally:
        telemetry.shutdown()

    assert telemetry.prometheus_enabled
    assert 'service_name="cirrus-controller"' in text
    assert 'service_version="1.2.3"' in text
    assert 'org_cirruslabs_controller_queue_length{labels="os=linux"' in text
    assert "org_cirruslabs_controller_queue_oldest_age_seconds{" in text
    assert "org_cirruslabs_controller_scheduling_assignments_total{" in text
    assert 'reason="workers_busy"' in text
    assert "org_cirruslabs_controller_tasks_pickup_latency_seconds_count{" in text


def test_both_metrics_objects_fit_the_port() -> None:
    ports: list[ControllerMetrics] = [NullControllerMetrics(), ControllerTelemetry()]

    for port in ports:
        port.task_assigned("w", 1.0)
        port.task_waiting("other")
        port.publish_gauges(ControllerGauges())
        assert not port.prometheus_enabled
        assert port.prometheus_text() == b""
