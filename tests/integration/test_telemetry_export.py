"""Telemetry end to end: OTLP/HTTP and OTLP/gRPC to a fake collector, the probe server, and a
collector that is not there."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from adapters.telemetry.health import PROMETHEUS_CONTENT_TYPE, HealthServer
from adapters.telemetry.instruments import METRIC_NAMES
from adapters.telemetry.setup import Telemetry, setup_telemetry
from adapters.telemetry.tracing import TASK_SPAN_NAME
from domain.isolation import TartIsolation, instance_attributes
from domain.telemetry import WorkerGauges
from tests.integration.otlp_receiver import GrpcOtlpReceiver, HttpOtlpReceiver, Received

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture(autouse=True)
def clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable of the surrounding environment may leak into these tests."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def http_receiver() -> Iterator[HttpOtlpReceiver]:
    receiver = HttpOtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcOtlpReceiver]:
    receiver = GrpcOtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def record_everything(telemetry: Telemetry) -> dict[str, str]:
    """One call of every port method and one task span; return the agent's trace environment."""
    metrics = telemetry.metrics
    tart = instance_attributes(TartIsolation(image="ghcr.io/x/macos:latest", cpu=4))
    metrics.task_accepted()
    metrics.standby_hit(tart)
    metrics.standby_miss(tart)
    metrics.image_used(tart)
    metrics.task_queue_to_start(1.5)
    metrics.task_finished("tart", "completed", 12.0)
    metrics.controller_request("Poll", 0.05, None)
    metrics.controller_request("TaskStarted", 0.3, "unavailable")
    metrics.publish_gauges(
        WorkerGauges(
            running_tasks=1,
            resources_used={"tart-vms": 1.0},
            resources_unused={"tart-vms": 1.0},
            standby_since=time.time() - 5,
        )
    )
    with telemetry.tracing.task("77", TRACEPARENT, "vendor=1", tart) as trace:
        with trace.step("create-instance"):
            pass
        return trace.environment()


def assert_received_a_worker_export(received: Received, env: dict[str, str]) -> None:
    assert received.wait_until(lambda: set(METRIC_NAMES) <= received.metric_names()), (
        f"missing: {set(METRIC_NAMES) - received.metric_names()}"
    )
    assert received.wait_until(lambda: len(received.spans()) >= 2)
    spans = {span.name: span for span in received.spans()}
    task = spans[TASK_SPAN_NAME]
    assert task.trace_id.hex() == TRACE_ID
    assert task.parent_span_id.hex() == PARENT_SPAN_ID
    assert spans["create-instance"].parent_span_id == task.span_id
    assert env["TRACEPARENT"] == f"00-{TRACE_ID}-{task.span_id.hex()}-01"
    for resource in received.resource_attributes():
        assert resource["service.name"] == "cirrus-worker"
        assert resource["service.version"] == "9.9.9"


def test_metrics_and_the_task_span_reach_an_otlp_http_collector(
    http_receiver: HttpOtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-fleet=lab")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "not-the-worker")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    telemetry = setup_telemetry("9.9.9")
    try:
        env = record_everything(telemetry)
        assert_received_a_worker_export(http_receiver.received, env)
    finally:
        telemetry.shutdown()
    assert all(h.get("x-fleet") == "lab" for h in http_receiver.received.headers)


def test_metrics_and_the_task_span_reach_an_otlp_grpc_collector(
    grpc_receiver: GrpcOtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_receiver.endpoint)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    telemetry = setup_telemetry("9.9.9")
    try:
        env = record_everything(telemetry)
        assert_received_a_worker_export(grpc_receiver.received, env)
    finally:
        telemetry.shutdown()


def test_the_final_export_at_shutdown_delivers_what_the_interval_did_not(
    http_receiver: HttpOtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")
    telemetry = setup_telemetry("9.9.9")
    telemetry.metrics.task_accepted()
    telemetry.shutdown()
    assert "org.cirruslabs.persistent_worker.tasks.count" in http_receiver.received.metric_names()


# --- a collector that is not there ------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_missing_collector_costs_one_warning_and_no_time(
    protocol: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")
    caplog.set_level(logging.WARNING)
    telemetry = setup_telemetry("9.9.9")
    try:
        started = time.monotonic()
        for _ in range(2000):
            telemetry.metrics.task_accepted()
            telemetry.metrics.controller_request("Poll", 0.01, "unavailable")
        record_everything(telemetry)
        assert time.monotonic() - started < 1.0
        telemetry.force_flush()  # both exports fail now, in this thread
        telemetry.force_flush()
    finally:
        started = time.monotonic()
        telemetry.shutdown(timeout_seconds=2.0)
        assert time.monotonic() - started < 4.0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "127.0.0.1" in warnings[0].getMessage()


def test_shutdown_is_bounded_with_the_default_export_timeouts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    caplog.set_level(logging.WARNING)
    telemetry = setup_telemetry("9.9.9")
    record_everything(telemetry)
    started = time.monotonic()
    telemetry.shutdown(timeout_seconds=1.0)
    assert time.monotonic() - started < 3.0
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 1


def test_without_an_endpoint_nothing_is_exported_and_no_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    telemetry = setup_telemetry("9.9.9", prometheus=True)
    record_everything(telemetry)
    assert (telemetry.metric_exporters, telemetry.span_exporters) == ((), ())
    assert telemetry.tracer_provider is None
    telemetry.shutdown(timeout_seconds=1.0)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith(("cirrus", "opentel"))]
    assert not [m for m in logged if "export" in m], logged


async def test_aclose_shuts_down_without_blocking_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    telemetry = setup_telemetry("9.9.9")
    record_everything(telemetry)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        await telemetry.aclose(timeout_seconds=1.0)
    finally:
        ticker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ticker
    assert ticks > 1


# --- the probe and metrics server -------------------------------------------------------------


async def test_the_probe_server_answers_health_readiness_and_prometheus_metrics() -> None:
    telemetry = setup_telemetry("9.9.9", enabled=False, prometheus=True)
    ready = False
    server = HealthServer(
        "127.0.0.1", 0, ready=lambda: ready, metrics_text=telemetry.prometheus_text
    )
    try:
        await server.start()
        record_everything(telemetry)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            ready = True
            assert (await client.get("/readyz")).status_code == 200
            metrics = await client.get("/metrics")
            assert (await client.get("/nothing")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405
    finally:
        await server.close()
        telemetry.shutdown()
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == PROMETHEUS_CONTENT_TYPE
    for name in METRIC_NAMES:
        assert name.replace(".", "_") in metrics.text, name
    assert 'name="tart-vms"' in metrics.text
    assert 'instance_type="tart"' in metrics.text


async def test_a_failing_readiness_check_is_not_ready_and_metrics_can_be_off() -> None:
    def broken() -> bool:
        raise RuntimeError("no snapshot")

    async with HealthServer("127.0.0.1", 0, ready=broken) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=5) as client:
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/metrics")).status_code == 404


async def test_closing_the_server_ends_a_silent_connection_and_frees_the_port() -> None:
    server = HealthServer("127.0.0.1", 0, ready=lambda: True)
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(500):  # until the server has accepted it (5 s at most)
            if server.open_connections:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 1
        await asyncio.wait_for(server.close(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
        await writer.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
