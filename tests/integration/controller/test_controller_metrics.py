"""The controller's metrics over real HTTP: ``/metrics`` in Prometheus text, and OTLP export."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.storage.sqlite_store import SqliteStore
from adapters.telemetry.controller_instruments import (
    METRIC_NAMES,
    ControllerTelemetry,
    setup_controller_telemetry,
)
from app.controller.server import create_app
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    REGISTRATION_TOKEN,
    RunningController,
    ShiftableClock,
    serve_controller,
)
from tests.integration.otlp_receiver import HttpOtlpReceiver

pytestmark = pytest.mark.integration

GPU_TASK = "task:\n  persistent_worker:\n    labels: {gpu: 'yes'}\n  script: nvidia-smi\n"
POLL_INTERVAL = 2
# The store is re-read at least this often even when nothing asks for it.
REFRESH_SECONDS = 1.0
PREFIX = "org_cirruslabs_controller_"

MeteredFactory = Callable[..., Awaitable[tuple[RunningController, ControllerTelemetry]]]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` whose labels include ``labels``; None if there is none."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


async def until_sample(
    controller: RunningController, name: str, condition: Callable[[float], bool], **labels: str
) -> str:
    """Scrape ``/metrics`` until sample ``name`` exists and meets ``condition``; return the text."""
    text = ""

    async def scrape() -> bool:
        nonlocal text
        response = await controller.http.get("/metrics")
        assert response.status_code == 200, response.text
        text = response.text
        value = sample(text, name, **labels)
        return value is not None and condition(value)

    for _ in range(200):
        if await scrape():
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} {labels} never met the condition; last scrape:\n{text}")


@pytest.fixture
async def start_metered(tmp_path: Path) -> AsyncIterator[MeteredFactory]:
    """Start controllers with metrics (``prometheus=``, ``export=``); stop them afterwards."""
    async with AsyncExitStack() as stack:

        async def start(
            *, prometheus: bool = True, export: bool = False
        ) -> tuple[RunningController, ControllerTelemetry]:
            clock = ShiftableClock()
            metrics = setup_controller_telemetry(
                "0.0.0-test", enabled=export, prometheus=prometheus, wall_clock=clock.now
            )
            stack.push_async_callback(metrics.aclose)
            store = await SqliteStore.open(tmp_path / "controller.db", clock)
            stack.push_async_callback(store.aclose)
            app = create_app(
                store,
                registration_token=REGISTRATION_TOKEN,
                admin_token=ADMIN_TOKEN,
                poll_interval_seconds=POLL_INTERVAL,
                clock=clock,
                metrics=metrics,
                metrics_refresh_seconds=REFRESH_SECONDS,
            )
            return await serve_controller(stack, app, clock, POLL_INTERVAL), metrics

        yield start


@pytest.fixture
def http_receiver() -> Iterator[HttpOtlpReceiver]:
    """A fake OTLP/HTTP collector on 127.0.0.1."""
    receiver = HttpOtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


async def test_metrics_show_a_task_waiting_for_labels_then_its_assignment_and_pickup_latency(
    start_metered: MeteredFactory,
) -> None:
    controller, _metrics = await start_metered()
    await controller.worker("plain").register()
    build = await controller.submit(GPU_TASK)
    controller.clock.advance(30)

    waiting = await until_sample(
        controller, PREFIX + "queue_length", lambda v: v == 1, labels="gpu=yes"
    )
    gpu = controller.worker("gpu", {"gpu": "yes"})
    await gpu.register()
    [task] = (await gpu.poll())["tasksToStart"]
    assigned = await until_sample(
        controller, PREFIX + "queue_length", lambda v: v == 0, labels="gpu=yes"
    )

    assert task["taskId"] == build["tasks"][0]["id"]
    reason = {"reason": "no_worker_with_labels"}
    assert sample(waiting, PREFIX + "scheduling_waits_total", **reason) == 1
    assert sample(waiting, PREFIX + "queue_waiting", **reason) == 1
    assert (sample(waiting, PREFIX + "queue_oldest_age_seconds", labels="gpu=yes") or 0) >= 30
    assert sample(waiting, PREFIX + "workers_online") == 1
    assert sample(waiting, PREFIX + "scheduling_assignments_total") is None
    assert sample(assigned, PREFIX + "scheduling_assignments_total", worker="gpu") == 1
    assert sample(assigned, PREFIX + "tasks_pickup_latency_seconds_count") == 1
    assert (sample(assigned, PREFIX + "tasks_pickup_latency_seconds_sum") or 0) >= 30
    assert sample(assigned, PREFIX + "queue_oldest_age_seconds", labels="gpu=yes") == 0
    assert sample(assigned, PREFIX + "workers_online") == 2
    assert sample(assigned, PREFIX + "scheduling_waits_total", **reason) == 1


async def test_metrics_need_no_token_and_are_prometheus_text(
    start_metered: MeteredFactory,
) -> None:
    controller, _metrics = await start_metered()

    response = await controller.http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'service_name="cirrus-controller"' in response.text
    assert PREFIX + "workers_offline" in response.text


async def test_a_paused_worker_is_counted_as_paused(start_metered: MeteredFactory) -> None:
    controller, _metrics = await start_metered()
    worker = controller.worker("w1")
    await worker.register()
    await worker.ok("CirrusWorkersService", "UpdateStatus", {"disabled": True}, worker.headers())

    text = await until_sample(controller, PREFIX + "workers_paused", lambda v: v == 1)

    assert sample(text, PREFIX + "workers_online") == 0


async def test_without_prometheus_or_without_metrics_there_is_no_metrics_page(
    start_metered: MeteredFactory, controller: RunningController
) -> None:
    otlp_only, _metrics = await start_metered(prometheus=False)

    assert (await otlp_only.http.get("/metrics")).status_code == 404
    assert (await controller.http.get("/metrics")).status_code == 404


async def test_controller_metrics_reach_an_otlp_collector_as_cirrus_controller(
    start_metered: MeteredFactory,
    http_receiver: HttpOtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "not-the-controller")
    controller, _metrics = await start_metered(prometheus=False, export=True)
    await controller.worker("plain").register()
    await controller.submit(GPU_TASK)
    wanted = set(METRIC_NAMES) - {
        # Nothing was assigned, so these have no data point to export yet.
        "org.cirruslabs.controller.scheduling.assignments",
        "org.cirruslabs.controller.tasks.pickup_latency",
    }

    arrived = await asyncio.to_thread(
        http_receiver.received.wait_until, lambda: wanted <= http_receiver.received.metric_names()
    )

    assert arrived, http_receiver.received.metric_names()
    services = {a.get("service.name") for a in http_receiver.received.resource_attributes()}
    assert services == {"cirrus-controller"}
