"""The worker's metrics and spans, read back in memory after scripted runs with fake ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
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
from adapters.telemetry.instruments import OtelMetrics
from adapters.telemetry.noop import NullTracing
from adapters.telemetry.setup import setup_telemetry
from adapters.telemetry.tracing import TASK_SPAN_NAME, OtelTracing
from app.worker.poll_loop import Worker, WorkerSettings
from app.worker.retry import BackoffPolicy
from app.worker.state import UpstreamSnapshot, WorkerSnapshot
from app.worker.task_runner import TaskRunner, task_status, upstream_hostname
from app.worker.upstream import Upstream
from app.worker_commands import snapshot_ready
from domain.isolation import ContainerIsolation, Isolation, NoneIsolation
from domain.modifiers import ModifierPool
from domain.policy import AllowedIsolations, ContainerPolicy, SecurityPolicy
from domain.protocol import (
    AgentAwareTask,
    Command,
    CommandResult,
    CommandsResponse,
    CommandStatus,
    PollResponse,
    ScriptInstruction,
    WorkerInfo,
    frozen_float_map,
)
from domain.task_environment import task_variables
from tests.unit.worker.fake_tools import fake_tools
from tests.unit.worker.fakes import (
    FakeClock,
    FakeController,
    FakeInstance,
    FakeInstances,
    ManualTimers,
    Sleeps,
    eventually,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
TRACESTATE = "vendor=abc"
DEBIAN = ContainerIsolation(image="debian:12", cpu=2)
CONTAINER_ATTRIBUTES = {"image": "debian:12", "instance_type": "container", "instance_cpus": 2.0}


def script(name: str, text: str) -> Command:
    return Command(name, ScriptInstruction((text,)))


def task(task_id: str, isolation: Isolation, resources: dict[str, float]) -> AgentAwareTask:
    return AgentAwareTask(
        task_id=task_id,
        client_secret="secret",
        isolation=isolation,
        resources_to_use=frozen_float_map(resources),
        traceparent=TRACEPARENT,
        tracestate=TRACESTATE,
    )


class TelemetryRig:
    """A worker wired to fakes and to in-memory OpenTelemetry metrics and spans."""

    def __init__(self, policy: SecurityPolicy) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        metrics = OtelMetrics(self.meter_provider)
        tracing = OtelTracing(self.tracer_provider)
        self.clock = FakeClock()
        self.controller = FakeController(endpoint="https://ci.example.test:8443")
        self.instances = FakeInstances()
        upstream = Upstream(
            MeteredControllerClient(self.controller, metrics),
            WorkerInfo(labels={"name": "w1"}),
            clock=self.clock,
            policy=BackoffPolicy(),
            sleep=Sleeps(),
        )
        runner = TaskRunner(
            policy=policy,
            instances=self.instances,
            modifiers=ModifierPool(()),
            clock=self.clock,
            tools=fake_tools(),
            timer_sleep=ManualTimers(),
            log_flush_interval=None,
            worker_name="w1",
            metrics=metrics,
            tracing=tracing,
        )
        self.run: asyncio.Task[int] | None = None
        self.worker = Worker(
            WorkerSettings(name="w1", resources_total=frozen_float_map({"cpu": 4})),
            [upstream],
            runner,
            clock=self.clock,
            sleep=Sleeps(),
            metrics=metrics,
        )

    def start(self) -> asyncio.Task[int]:
        self.run = asyncio.create_task(self.worker.run())
        return self.run

    async def finish(self, run: asyncio.Task[int]) -> None:
        self.controller.answer(PollResponse(shutdown=True))
        assert await asyncio.wait_for(run, 5) == 0

    def metrics(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            metric.name: metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }

    def close(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


@pytest.fixture
async def rig() -> AsyncIterator[TelemetryRig]:
    # Containers only: a task asking for no isolation is refused by the security policy.
    made = TelemetryRig(SecurityPolicy(AllowedIsolations(container=ContainerPolicy())))
    try:
        yield made
    finally:
        # A failed assertion leaves the worker running: stop it, or the loop never closes.
        if made.run is not None and not made.run.done():
            made.run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await made.run
        made.close()


def points(metric: Metric) -> dict[frozenset[tuple[str, Any]], Any]:
    """A metric's data points keyed by their attributes."""
    assert isinstance(metric.data, Sum | Gauge | Histogram)
    return {frozenset((p.attributes or {}).items()): p for p in metric.data.data_points}


def values(metric: Metric) -> dict[frozenset[tuple[str, Any]], float]:
    """A counter's or gauge's values keyed by their attributes."""
    found = {}
    for key, point in points(metric).items():
        assert isinstance(point, NumberDataPoint)
        found[key] = float(point.value)
    return found


def counts(metric: Metric) -> dict[frozenset[tuple[str, Any]], int]:
    """A histogram's counts keyed by their attributes."""
    found = {}
    for key, point in points(metric).items():
        assert isinstance(point, HistogramDataPoint)
        found[key] = point.count
    return found


def key(**attributes: Any) -> frozenset[tuple[str, Any]]:
    return frozenset(attributes.items())


def task_span(spans: tuple[ReadableSpan, ...], task_id: str) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == TASK_SPAN_NAME and (s.attributes or {}).get("cirrus.task_id") == task_id
    ]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def run_completed_and_refused(rig: TelemetryRig) -> None:
    """t1 runs two commands in a container; t2 asks for no isolation and is refused."""
    rig.controller.commands["t1"] = CommandsResponse(
        environment={"FOO": "bar"},
        commands=(script("build", "print:hello"), script("test", "true")),
    )
    run = rig.start()
    rig.controller.answer(
        PollResponse(
            tasks_to_start=(task("t1", DEBIAN, {"cpu": 2}), task("t2", NoneIsolation(), {"cpu": 1}))
        )
    )
    await eventually(
        lambda: [n for n, v in rig.controller.calls if n == "task_stopped"] == ["task_stopped"] * 2,
        "TaskStopped of both",
    )
    await eventually(lambda: not rig.worker.tasks, "both tasks forgotten")
    await rig.finish(run)


async def test_a_completed_and_a_refused_task_are_counted_and_timed_by_isolation_and_status(
    rig: TelemetryRig,
) -> None:
    await run_completed_and_refused(rig)
    found = rig.metrics()

    # Both were accepted (the policy check is part of running a task, as in the original).
    assert values(found[names.TASKS_COUNT]) == {key(): 2.0}
    assert values(found[names.IMAGES_TOTAL]) == {key(**CONTAINER_ATTRIBUTES): 1.0}
    assert counts(found[names.TASKS_DURATION]) == {
        key(isolation="container", status="completed"): 1,
        key(isolation="none", status="failed"): 1,
    }
    assert counts(found[names.TASKS_QUEUE_TO_START]) == {key(): 1}
    # Nothing runs any more: no task, nothing used, every resource free.
    assert values(found[names.TASKS_RUNNING_COUNT]) == {key(): 0.0}
    assert names.RESOURCES_USED_COUNT not in found or not points(found[names.RESOURCES_USED_COUNT])
    assert values(found[names.RESOURCES_UNUSED_COUNT]) == {key(name="cpu"): 4.0}
    # Controller calls went through the metered client.
    requests = counts(found[names.CONTROLLER_REQUESTS_DURATION])
    for method in ("Register", "Poll", "TaskStarted", "TaskFailed", "TaskStopped"):
        assert requests[key(method=method)] >= 1, method
    assert requests[key(method="InitialCommands")] == 1


async def test_a_task_span_is_parented_on_the_controllers_trace_with_a_span_per_step(
    rig: TelemetryRig,
) -> None:
    await run_completed_and_refused(rig)
    spans = rig.spans.get_finished_spans()

    t1 = task_span(spans, "t1")
    assert t1.parent is not None
    assert f"{t1.parent.span_id:016x}" == PARENT_SPAN_ID
    assert f"{t1.context.trace_id:032x}" == TRACE_ID
    assert dict(t1.attributes or {}) == {
        **CONTAINER_ATTRIBUTES,
        "cirrus.task_id": "t1",
        "cirrus.upstream_worker_name": "w1",
        "cirrus.upstream_hostname": "ci.example.test:8443",
    }
    assert t1.status.status_code is StatusCode.UNSET
    steps = sorted(children(spans, t1), key=lambda s: s.start_time or 0)
    assert [s.name for s in steps] == [
        "create-instance",
        "command/build",
        "command/test",
        "clean-up",
    ]
    assert all(s.context.trace_id == t1.context.trace_id for s in steps)

    t2 = task_span(spans, "t2")
    assert t2.status.status_code is StatusCode.ERROR
    assert "isolation is not allowed" in (t2.status.description or "")
    t2_steps = {s.name: s for s in children(spans, t2)}
    assert set(t2_steps) == {"create-instance", "clean-up"}
    assert t2_steps["create-instance"].status.status_code is StatusCode.ERROR


async def test_every_command_gets_the_task_spans_traceparent_and_the_tracestate(
    rig: TelemetryRig,
) -> None:
    await run_completed_and_refused(rig)
    t1 = task_span(rig.spans.get_finished_spans(), "t1")
    expected = f"00-{TRACE_ID}-{t1.context.span_id:016x}-01"
    instance: FakeInstance = rig.instances.created["t1"]
    assert [script for script, _ in instance.scripts] == ["print:hello", "true"]
    for _, env in instance.scripts:
        assert env["TRACEPARENT"] == expected
        assert env["TRACESTATE"] == TRACESTATE
        assert env["FOO"] == "bar"


async def test_gauges_show_a_running_task_and_its_resources_and_a_cancelled_one_is_aborted(
    rig: TelemetryRig,
) -> None:
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("wait", "block"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", DEBIAN, {"cpu": 3}),)))
    await eventually(lambda: "t1" in rig.instances.created, "t1 created")
    await eventually(rig.instances.created["t1"].blocking.is_set, "t1 running its command")

    found = rig.metrics()
    assert values(found[names.TASKS_RUNNING_COUNT]) == {key(): 1.0}
    assert values(found[names.RESOURCES_USED_COUNT]) == {key(name="cpu"): 3.0}
    assert values(found[names.RESOURCES_UNUSED_COUNT]) == {key(name="cpu"): 1.0}

    rig.controller.answer(PollResponse(tasks_to_stop=("t1",)))
    await eventually(lambda: not rig.worker.tasks, "t1 forgotten")
    found = rig.metrics()
    assert values(found[names.TASKS_RUNNING_COUNT]) == {key(): 0.0}
    assert values(found[names.RESOURCES_UNUSED_COUNT]) == {key(name="cpu"): 4.0}
    assert counts(found[names.TASKS_DURATION]) == {key(isolation="container", status="aborted"): 1}
    await rig.finish(run)


async def test_a_task_refused_while_draining_is_timed_as_refused_and_not_counted(
    rig: TelemetryRig,
) -> None:
    run = rig.start()
    await eventually(lambda: rig.controller.polls, "first poll")
    rig.worker.drain()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t9", DEBIAN, {}),)))
    await eventually(lambda: ("task_stopped", "t9") in rig.controller.calls, "TaskStopped")
    await asyncio.wait_for(run, 5)

    found = rig.metrics()
    assert names.TASKS_COUNT not in found or values(found[names.TASKS_COUNT]) == {key(): 0.0}
    assert counts(found[names.TASKS_DURATION]) == {key(isolation="container", status="refused"): 1}
    assert not [s for s in rig.spans.get_finished_spans() if s.name == TASK_SPAN_NAME]


def test_the_task_environment_takes_the_trace_context_after_the_basics_and_before_the_task() -> (
    None
):
    trace = {"TRACEPARENT": TRACEPARENT, "TRACESTATE": TRACESTATE}
    response = CommandsResponse(environment={"TRACESTATE": "from=build", "CI": "yes"})
    env = task_variables("t1", "/w", response.environment, trace)
    assert env["TRACEPARENT"] == TRACEPARENT
    assert env["TRACESTATE"] == "from=build"
    assert env["CI"] == "yes"
    assert env["CIRRUS_TASK_ID"] == "t1"
    assert "TRACEPARENT" not in task_variables("t1", "/w", CommandsResponse().environment)


def test_a_task_fails_when_a_command_failed_or_timed_out_and_completes_otherwise() -> None:
    ok = CommandResult("a", CommandStatus.COMPLETED)
    skipped = CommandResult("b", CommandStatus.SKIPPED)
    assert task_status([ok, skipped]) == "completed"
    assert task_status([]) == "completed"
    assert task_status([ok, CommandResult("c", CommandStatus.FAILED)]) == "failed"
    assert task_status([ok, CommandResult("c", CommandStatus.ABORTED)]) == "failed"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("https://ci.example.com", "ci.example.com:443"),
        ("http://ci.example.com/prefix/", "ci.example.com:80"),
        ("http://user:pw@ci.example.com:81", "ci.example.com:81"),
        ("http://[::1]:9000", "[::1]:9000"),
    ],
)
def test_the_upstream_hostname_is_host_and_port_without_credentials(
    endpoint: str, expected: str
) -> None:
    assert upstream_hostname(endpoint) == expected


async def test_without_telemetry_the_controllers_trace_context_still_reaches_the_commands() -> None:
    controller = FakeController()
    instances = FakeInstances()
    clock = FakeClock()
    upstream = Upstream(controller, WorkerInfo(), clock=clock, sleep=Sleeps())
    runner = TaskRunner(
        policy=SecurityPolicy(),
        instances=instances,
        modifiers=ModifierPool(()),
        clock=clock,
        tools=fake_tools(),
    )
    worker = Worker(WorkerSettings(name="w1"), [upstream], runner, clock=clock, sleep=Sleeps())
    controller.commands["t1"] = CommandsResponse(commands=(script("a", "true"),))
    run = asyncio.create_task(worker.run())
    controller.answer(PollResponse(tasks_to_start=(task("t1", NoneIsolation(), {}),)))
    await eventually(lambda: ("task_stopped", "t1") in controller.calls, "TaskStopped")
    controller.answer(PollResponse(shutdown=True))
    assert await asyncio.wait_for(run, 5) == 0
    env = instances.created["t1"].scripts[0][1]
    assert env["TRACEPARENT"] == TRACEPARENT
    assert env["TRACESTATE"] == TRACESTATE


def test_readiness_needs_every_upstream_registered_and_polled_within_three_intervals() -> None:
    def snapshot(*upstreams: UpstreamSnapshot) -> WorkerSnapshot:
        return WorkerSnapshot(name="w1", upstreams=upstreams, taken_at=1000.0)

    fresh = UpstreamSnapshot("http://a", registered=True, last_poll_time=990.0)
    stale = UpstreamSnapshot("http://b", registered=True, last_poll_time=969.0)
    unregistered = UpstreamSnapshot("http://c", registered=False, last_poll_time=999.0)
    assert snapshot_ready(snapshot(fresh))
    assert not snapshot_ready(snapshot(fresh, stale))
    assert not snapshot_ready(snapshot(unregistered))
    assert not snapshot_ready(snapshot(UpstreamSnapshot("http://d", registered=True)))
    assert not snapshot_ready(snapshot())


def test_with_the_sdk_disabled_prometheus_still_serves_metrics_and_nothing_is_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = setup_telemetry("1.0", prometheus=True)
    try:
        telemetry.metrics.task_accepted()
        text = telemetry.prometheus_text().decode()
    finally:
        telemetry.shutdown()
    counted = [
        line
        for line in text.splitlines()
        if line.startswith("org_cirruslabs_persistent_worker_tasks_count_total{")
    ]
    assert len(counted) == 1
    assert counted[0].endswith(" 1.0")
    assert telemetry.metric_exporters == ()
    assert telemetry.span_exporters == ()
    assert isinstance(telemetry.tracing, NullTracing)
