"""The worker's metrics, spans, readiness rule and export settings, read back in memory."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

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
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from adapters.telemetry import instruments as names
from adapters.telemetry.controller_calls import MeteredControllerClient
from adapters.telemetry.export import ExportFailureLog, metric_exporter, span_exporter
from adapters.telemetry.health import is_loopback, parse_listen_address
from adapters.telemetry.instruments import OtelMetrics
from adapters.telemetry.noop import NullMetrics, NullTracing
from adapters.telemetry.otlp_env import (
    DEFAULT_EXPORT_TIMEOUT_SECONDS,
    export_timeout,
    metric_export_interval,
    otlp_protocol,
    signal_enabled,
)
from adapters.telemetry.setup import SERVICE_NAME, setup_telemetry, worker_resource
from adapters.telemetry.tracing import TASK_SPAN_NAME, OtelTracing
from domain.errors import ConfigError, TransientControllerError
from domain.isolation import NoneIsolation, TartIsolation, instance_attributes
from domain.ports import ControllerClient
from domain.protocol import TaskRef, WorkerInfo
from domain.telemetry import (
    Metrics,
    TaskTrace,
    Tracing,
    WorkerGauges,
    upstream_ready,
    worker_ready,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


class FakeWallClock:
    """Wall-clock time that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def read(reader: InMemoryMetricReader) -> dict[str, Metric]:
    """Every metric of the meter ``worker``, by name."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, Metric] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == names.METER_NAME
            found.update({metric.name: metric for metric in scope.metrics})
    return found


def points(metric: Metric) -> dict[frozenset[tuple[str, Any]], Any]:
    """A metric's data points keyed by their attributes."""
    assert isinstance(metric.data, Sum | Gauge | Histogram)
    return {frozenset((p.attributes or {}).items()): p for p in metric.data.data_points}


def number(point: Any) -> float:
    assert isinstance(point, NumberDataPoint)
    return float(point.value)


def histogram(point: Any) -> HistogramDataPoint:
    assert isinstance(point, HistogramDataPoint)
    return point


def test_a_scripted_task_sequence_is_read_back_with_values_attributes_and_units() -> None:
    clock = FakeWallClock(1000.0)
    meter_provider = MeterProvider(
        metric_readers=[r := InMemoryMetricReader()], shutdown_on_exit=False
    )
    try:
        metrics: Metrics = OtelMetrics(meter_provider, version="1.2.3", wall_clock=clock)
        tart = instance_attributes(TartIsolation(image="ghcr.io/x/macos:latest", cpu=4))
        none = instance_attributes(NoneIsolation())
        metrics.task_accepted()
        metrics.task_accepted()
        metrics.standby_hit(tart)
        metrics.standby_miss(tart)
        metrics.standby_miss(tart)
        metrics.image_used(tart)
        metrics.image_used(none)
        metrics.task_queue_to_start(2.5)
        metrics.task_finished("tart", "completed", 42.0)
        metrics.task_finished("none", "failed", 3.0)
        metrics.controller_request("Poll", 0.2, None)
        metrics.controller_request("Poll", 0.4, "unavailable")
        metrics.controller_request("TaskStarted", 0.1, None)
        metrics.publish_gauges(
            WorkerGauges(
                running_tasks=2,
                resources_used={"tart-vms": 1.0},
                resources_unused={"tart-vms": 1.0, "gpu": 0.5},
                standby_since=970.0,
            )
        )
        found = read(r)
    finally:
        meter_provider.shutdown()

    assert set(found) == set(names.METRIC_NAMES)
    tart_key = frozenset(
        {("image", "ghcr.io/x/macos:latest"), ("instance_type", "tart"), ("instance_cpus", 4.0)}
    )
    none_key = frozenset({("instance_type", "none")})
    assert number(points(found[names.TASKS_COUNT])[frozenset()]) == 2
    assert number(points(found[names.STANDBY_HIT])[tart_key]) == 1
    assert number(points(found[names.STANDBY_MISS])[tart_key]) == 2
    images = points(found[names.IMAGES_TOTAL])
    assert (number(images[tart_key]), number(images[none_key])) == (1, 1)

    durations = points(found[names.TASKS_DURATION])
    completed = histogram(durations[frozenset({("isolation", "tart"), ("status", "completed")})])
    assert (completed.count, completed.sum) == (1, 42.0)
    failed = histogram(durations[frozenset({("isolation", "none"), ("status", "failed")})])
    assert (failed.count, failed.sum) == (1, 3.0)
    queued = histogram(points(found[names.TASKS_QUEUE_TO_START])[frozenset()])
    assert (queued.count, queued.sum) == (1, 2.5)

    requests = points(found[names.CONTROLLER_REQUESTS_DURATION])
    poll = histogram(requests[frozenset({("method", "Poll")})])
    assert poll.count == 2
    assert poll.sum == pytest.approx(0.6)
    assert histogram(requests[frozenset({("method", "TaskStarted")})]).count == 1
    errors = points(found[names.CONTROLLER_REQUESTS_ERRORS])
    assert set(errors) == {frozenset({("method", "Poll"), ("code", "unavailable")})}
    assert number(next(iter(errors.values()))) == 1

    assert number(points(found[names.TASKS_RUNNING_COUNT])[frozenset()]) == 2
    used = points(found[names.RESOURCES_USED_COUNT])
    assert {k: number(v) for k, v in used.items()} == {frozenset({("name", "tart-vms")}): 1.0}
    unused = points(found[names.RESOURCES_UNUSED_COUNT])
    assert {k: number(v) for k, v in unused.items()} == {
        frozenset({("name", "tart-vms")}): 1.0,
        frozenset({("name", "gpu")}): 0.5,
    }
    assert number(points(found[names.STANDBY_AGE])[frozenset()]) == 30.0

    for name in (names.TASKS_COUNT, names.STANDBY_HIT, names.IMAGES_TOTAL):
        data = found[name].data
        assert isinstance(data, Sum)
        assert data.is_monotonic
    for name in (names.TASKS_RUNNING_COUNT, names.RESOURCES_USED_COUNT, names.STANDBY_AGE):
        assert isinstance(found[name].data, Gauge)
    assert all(metric.unit for metric in found.values())
    assert found[names.TASKS_DURATION].unit == "s"
    assert found[names.STANDBY_AGE].unit == "s"


def test_gauges_report_the_latest_published_snapshot_and_no_standby_age_without_one() -> None:
    clock = FakeWallClock(500.0)
    provider = MeterProvider(metric_readers=[r := InMemoryMetricReader()], shutdown_on_exit=False)
    try:
        metrics = OtelMetrics(provider, wall_clock=clock)
        metrics.publish_gauges(WorkerGauges(running_tasks=3, standby_since=400.0))
        first = read(r)
        metrics.publish_gauges(WorkerGauges(running_tasks=0))
        second = read(r)
    finally:
        provider.shutdown()
    assert number(points(first[names.TASKS_RUNNING_COUNT])[frozenset()]) == 3
    assert number(points(first[names.STANDBY_AGE])[frozenset()]) == 100.0
    assert number(points(second[names.TASKS_RUNNING_COUNT])[frozenset()]) == 0
    assert names.STANDBY_AGE not in second or not points(second[names.STANDBY_AGE])


def test_a_published_snapshot_does_not_change_when_the_callers_dict_does() -> None:
    used = {"cpu": 2.0}
    gauges = WorkerGauges(running_tasks=1, resources_used=used)
    used["cpu"] = 99.0
    used["gpu"] = 1.0
    assert dict(gauges.resources_used) == {"cpu": 2.0}


def test_the_null_implementations_satisfy_the_ports_and_do_nothing() -> None:
    metrics: Metrics = NullMetrics()
    tracing: Tracing = NullTracing()
    metrics.task_accepted()
    metrics.controller_request("Poll", 1.0, "internal")
    with tracing.task("t1", TRACEPARENT, "vendor=1", {}) as trace:
        with trace.step("create-instance"):
            pass
        trace.fail("nope")
        assert trace.environment() == {"TRACEPARENT": TRACEPARENT, "TRACESTATE": "vendor=1"}
    with tracing.task("t2", "", "", {}) as untraced:
        assert untraced.environment() == {}


# --- traces ---------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[tuple[OtelTracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield OtelTracing(provider), exporter
    provider.shutdown()


def finished(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_the_task_span_continues_the_controllers_trace_and_names_itself_to_the_agent(
    spans: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    attributes = {**instance_attributes(NoneIsolation()), "cirrus.upstream_worker_name": "w1"}
    trace: TaskTrace
    with tracing.task("42", TRACEPARENT, "vendor=abc", attributes) as trace:
        env = trace.environment()
        with trace.step("create-instance", {"instance_type": "none"}):
            pass
        with trace.step("command/main"):
            pass
    by_name = finished(exporter)
    task = by_name[TASK_SPAN_NAME]
    assert task.context is not None
    assert task.parent is not None
    assert format(task.context.trace_id, "032x") == TRACE_ID
    assert format(task.parent.span_id, "016x") == PARENT_SPAN_ID
    assert task.parent.is_remote
    assert dict(task.attributes or {}) == {
        "instance_type": "none",
        "cirrus.upstream_worker_name": "w1",
        "cirrus.task_id": "42",
    }
    assert env == {
        "TRACEPARENT": f"00-{TRACE_ID}-{task.context.span_id:016x}-01",
        "TRACESTATE": "vendor=abc",
    }
    for child in ("create-instance", "command/main"):
        span = by_name[child]
        assert span.parent is not None
        assert span.parent.span_id == task.context.span_id
        assert span.context is not None
        assert span.context.trace_id == task.context.trace_id
    assert dict(by_name["create-instance"].attributes or {}) == {"instance_type": "none"}


def test_without_a_valid_traceparent_the_task_span_starts_a_new_trace(
    spans: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    with tracing.task("1", "not-a-traceparent", "vendor=abc", {}) as trace:
        env = trace.environment()
    task = finished(exporter)[TASK_SPAN_NAME]
    assert task.parent is None
    assert set(env) == {"TRACEPARENT"}


def test_an_error_escaping_a_step_marks_the_step_and_the_task_failed(
    spans: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    with (
        pytest.raises(RuntimeError, match="boom"),
        tracing.task("1", TRACEPARENT, "", {}) as trace,
        trace.step("clean-up"),
    ):
        raise RuntimeError("boom")
    by_name = finished(exporter)
    assert by_name["clean-up"].status.status_code is StatusCode.ERROR
    assert by_name[TASK_SPAN_NAME].status.status_code is StatusCode.ERROR
    assert by_name["clean-up"].events[0].name == "exception"


def test_fail_marks_the_task_span_failed_with_the_message(
    spans: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    with tracing.task("1", TRACEPARENT, "", {}) as trace:
        trace.fail("failed to create an instance: no such image")
    status = finished(exporter)[TASK_SPAN_NAME].status
    assert status.status_code is StatusCode.ERROR
    assert status.description == "failed to create an instance: no such image"


# --- export settings and the failure log -----------------------------------------------------


def test_otlp_is_http_unless_grpc_is_asked_for_per_signal_or_for_all() -> None:
    assert otlp_protocol("metrics", {}) == "http/protobuf"
    assert otlp_protocol("metrics", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"
    both = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert (otlp_protocol("metrics", both), otlp_protocol("traces", both)) == (
        "grpc",
        "http/protobuf",
    )


def test_an_unsupported_protocol_falls_back_to_http_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert otlp_protocol("traces", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}) == "http/protobuf"
    assert "http/json" in caplog.text


def test_the_short_export_timeout_applies_only_when_no_timeout_variable_is_set() -> None:
    assert export_timeout("metrics", {}) == DEFAULT_EXPORT_TIMEOUT_SECONDS
    assert export_timeout("metrics", {"OTEL_EXPORTER_OTLP_TIMEOUT": "30"}) is None
    assert export_timeout("traces", {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30"}) is None
    assert export_timeout("metrics", {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30"}) == 5.0


def test_the_export_interval_is_read_in_milliseconds_with_a_60_second_default() -> None:
    assert metric_export_interval({}) == 60.0
    assert metric_export_interval({"OTEL_METRIC_EXPORT_INTERVAL": "250"}) == 0.25
    assert metric_export_interval({"OTEL_METRIC_EXPORT_INTERVAL": "soon"}) == 60.0
    assert metric_export_interval({"OTEL_METRIC_EXPORT_INTERVAL": "0"}) == 60.0


def test_a_signal_exporter_set_to_none_disables_that_signal() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert signal_enabled("metrics", endpoint)
    assert not signal_enabled("traces", {**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    assert signal_enabled("metrics", {**endpoint, "OTEL_TRACES_EXPORTER": "none"})


def test_without_an_endpoint_or_otlp_exporter_no_signal_is_exported() -> None:
    assert not signal_enabled("metrics", {})
    assert not signal_enabled("traces", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert not signal_enabled("metrics", {"OTEL_EXPORTER_OTLP_ENDPOINT": " "})


def test_a_signal_specific_endpoint_or_exporter_enables_only_that_signal() -> None:
    metrics_only = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics"}
    assert signal_enabled("metrics", metrics_only)
    assert not signal_enabled("traces", metrics_only)
    assert signal_enabled("traces", {"OTEL_TRACES_EXPORTER": "otlp"})
    assert not signal_enabled("metrics", {"OTEL_TRACES_EXPORTER": "otlp"})


def test_failed_exports_warn_once_per_interval_and_recovery_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = ExportFailureLog(60.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="cirrus.telemetry")
    for second in range(0, 60, 5):
        now[0] = float(second)
        failures.failed("metrics", "http://localhost:4318/v1/metrics", "refused")
        failures.failed("traces", "http://localhost:4318/v1/traces", "refused")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "http://localhost:4318/v1/metrics" in warnings[0].getMessage()
    now[0] = 60.0
    failures.failed("metrics", "http://localhost:4318/v1/metrics", "refused")
    failures.succeeded("metrics", "http://localhost:4318/v1/metrics")
    failures.succeeded("metrics", "http://localhost:4318/v1/metrics")
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.WARNING, logging.INFO]


def test_a_success_without_earlier_failures_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cirrus.telemetry")
    ExportFailureLog(1.0).succeeded("metrics", "x")
    assert caplog.records == []


# --- resource and setup -----------------------------------------------------------------------


def test_the_service_name_wins_over_otel_service_name_and_the_version_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "something-else")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=lab")
    attributes = worker_resource("1.2.3").attributes
    assert attributes["service.name"] == SERVICE_NAME == "cirrus-worker"
    assert attributes["service.version"] == "1.2.3"
    assert attributes["deployment.environment"] == "lab"
    assert attributes["host.arch"]


def test_disabled_telemetry_without_prometheus_is_all_no_ops() -> None:
    telemetry = setup_telemetry("1.0", enabled=False)
    assert isinstance(telemetry.metrics, NullMetrics)
    assert isinstance(telemetry.tracing, NullTracing)
    assert telemetry.prometheus_text() == b""
    telemetry.shutdown()


def test_otel_sdk_disabled_turns_export_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = setup_telemetry("1.0")
    assert isinstance(telemetry.metrics, NullMetrics)


def test_prometheus_text_alone_needs_no_collector() -> None:
    telemetry = setup_telemetry("1.0", enabled=False, prometheus=True)
    try:
        telemetry.metrics.task_accepted()
        text = telemetry.prometheus_text().decode()
    finally:
        telemetry.shutdown()
    assert "org_cirruslabs_persistent_worker_tasks_count_total" in text
    assert isinstance(telemetry.tracing, NullTracing)


# --- readiness and the listen address ---------------------------------------------------------


class Upstream:
    def __init__(self, registered: bool, last_poll_time: float | None, interval: float) -> None:
        self.registered = registered
        self.last_poll_time = last_poll_time
        self.poll_interval_seconds = interval


def test_ready_means_registered_and_polled_within_three_intervals() -> None:
    assert upstream_ready(Upstream(True, 100.0, 10.0), now=130.0)
    assert not upstream_ready(Upstream(True, 100.0, 10.0), now=130.5)
    assert not upstream_ready(Upstream(False, 100.0, 10.0), now=101.0)
    assert not upstream_ready(Upstream(True, None, 10.0), now=101.0)


def test_a_worker_is_ready_only_when_every_upstream_is() -> None:
    good, stale = Upstream(True, 100.0, 10.0), Upstream(True, 10.0, 10.0)
    assert worker_ready([good], now=105.0)
    assert not worker_ready([good, stale], now=105.0)
    assert not worker_ready([], now=105.0)


@given(
    last=st.floats(0, 1e9),
    interval=st.floats(1, 3600),
    elapsed=st.floats(0, 1e5),
    earlier=st.floats(0, 1),
)
def test_a_ready_upstream_was_also_ready_at_every_earlier_moment_after_its_poll(
    last: float, interval: float, elapsed: float, earlier: float
) -> None:
    upstream = Upstream(True, last, interval)
    if upstream_ready(upstream, last + elapsed):
        assert upstream_ready(upstream, last + elapsed * earlier)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9090", ("127.0.0.1", 9090)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8081", ("::1", 8081)),
        ("127.1.2.3:65535", ("127.1.2.3", 65535)),
    ],
)
def test_loopback_listen_addresses_are_accepted(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(value) == expected


@pytest.mark.parametrize("value", ["0.0.0.0:9090", "[::]:9090", "192.168.1.5:80", "example.com:80"])
def test_public_listen_addresses_are_refused_unless_allowed(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_listen_address(value)
    assert refused.value.key == "--listen"
    assert "loopback" in refused.value.message
    host, _port = parse_listen_address(value, allow_public=True)
    assert not is_loopback(host)


@pytest.mark.parametrize(
    "value", ["9090", ":9090", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"]
)
def test_malformed_listen_addresses_are_refused(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_listen_address(value, allow_public=True)
    assert refused.value.key == "--listen"


@pytest.mark.parametrize(
    ("protocol", "metrics_endpoint", "traces_endpoint"),
    [
        ("http/protobuf", "http://localhost:4318/v1/metrics", "http://localhost:4318/v1/traces"),
        ("grpc", "localhost:4317", "localhost:4317"),
    ],
)
def test_without_an_endpoint_variable_the_local_collector_is_the_default(
    protocol: str, metrics_endpoint: str, traces_endpoint: str
) -> None:
    failures = ExportFailureLog(60.0)
    environ = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("OTEL_EXPORTER_OTLP")]:
            patch.delenv(name)
        patch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        metrics = metric_exporter(environ, failures)
        spans = span_exporter(environ, failures)
    try:
        assert (metrics.endpoint, spans.endpoint) == (metrics_endpoint, traces_endpoint)
    finally:
        metrics.shutdown()
        spans.shutdown()


# --- controller calls -------------------------------------------------------------------------


class RecordingMetrics(NullMetrics):
    """Keeps every ``controller_request`` call."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, float, str | None]] = []

    def controller_request(self, method: str, duration_seconds: float, error: str | None) -> None:
        self.requests.append((method, duration_seconds, error))


class ScriptedClient:
    """Answers ``register`` with a token and fails ``heartbeat`` / ``task_started``."""

    endpoint = "http://127.0.0.1:8080"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.closed = False

    async def register(self, worker_info: WorkerInfo) -> str:
        self.clock[0] += 0.25
        return "session"

    async def heartbeat(self, task: TaskRef) -> None:
        self.clock[0] += 1.0
        raise TransientControllerError("unavailable", "controller restarting")

    async def task_started(self, task: TaskRef) -> None:
        raise ValueError("bug")

    async def aclose(self) -> None:
        self.closed = True


async def test_controller_calls_are_timed_and_failures_counted_by_twirp_code() -> None:
    clock = [10.0]
    inner = ScriptedClient(clock)
    metrics = RecordingMetrics()
    client = MeteredControllerClient(
        inner,  # type: ignore[arg-type]  # a partial fake: only the methods called here
        metrics,
        monotonic=lambda: clock[0],
    )
    assert await client.register(WorkerInfo()) == "session"
    with pytest.raises(TransientControllerError):
        await client.heartbeat(TaskRef("1", "s"))
    with pytest.raises(ValueError, match="bug"):
        await client.task_started(TaskRef("1", "s"))
    await client.aclose()
    assert metrics.requests == [
        ("Register", 0.25, None),
        ("Heartbeat", 1.0, "unavailable"),
        ("TaskStarted", 0.0, "ValueError"),
    ]
    assert inner.closed
    port: ControllerClient = client  # the wrapper is a controller client itself
    assert port.endpoint == inner.endpoint
