"""``cirrus worker run`` telemetry end to end: the real executable against the fake controller,
exporting to a fake OTLP collector (HTTP and gRPC) and serving ``--listen`` probes and metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.telemetry.instruments import (
    CONTROLLER_REQUESTS_DURATION,
    IMAGES_TOTAL,
    RESOURCES_UNUSED_COUNT,
    TASKS_COUNT,
    TASKS_DURATION,
    TASKS_QUEUE_TO_START,
    TASKS_RUNNING_COUNT,
)
from adapters.telemetry.tracing import TASK_SPAN_NAME
from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.otlp_receiver import GrpcOtlpReceiver, HttpOtlpReceiver, Received

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
# Metrics every run with one finished task reports, whatever the moment of export.
EXPECTED_METRICS = {
    TASKS_COUNT,
    TASKS_RUNNING_COUNT,
    RESOURCES_UNUSED_COUNT,
    IMAGES_TOTAL,
    TASKS_DURATION,
    TASKS_QUEUE_TO_START,
    CONTROLLER_REQUESTS_DURATION,
}


# Only the Prometheus reader of --listen: no collector is there to export to.
NO_OTLP_EXPORT = {"OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}


class Worker:
    """A ``cirrus worker run`` subprocess in its own session, output captured in files."""

    def __init__(self, tmp_path: Path, controller: FakeController) -> None:
        self.tmp_path = tmp_path
        self.controller = controller
        self.name = "otel-" + uuid.uuid4().hex[:8]
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_path = tmp_path / "worker.stderr"

    def start(self, *args: str, env: dict[str, str] | None = None) -> Worker:
        """Write a config pointing at the fake controller and start the worker with ``args``."""
        config = {
            "name": self.name,
            "token": self.controller.registration_token,
            "rpc": {"endpoint": self.controller.url},
            "resources": {"slots": 2},
            "log": {"level": "debug"},
        }
        path = self.tmp_path / "worker.yml"
        path.write_text(yaml.safe_dump(config))
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CIRRUS_", "OTEL_"))
            and k.lower() not in ("http_proxy", "https_proxy")
        }
        environ.update(env or {})
        with (
            (self.tmp_path / "worker.stdout").open("wb") as out,
            self.stderr_path.open("wb") as err,
        ):
            self.process = subprocess.Popen(
                [str(CIRRUS), "worker", "run", "-f", str(path), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=environ,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        self.controller.give_up_check = self.exited_early
        return self

    def exited_early(self) -> str | None:
        """Why waiting is pointless: the worker is gone (with its stderr)."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"worker exited with {self.process.returncode}; stderr:\n{self.stderr()[-3000:]}"

    def stderr(self) -> str:
        """Everything the worker wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (drain) and the exit code; fails if the worker does not exit in time."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker still running; stderr:\n{self.stderr()[-3000:]}"
            ) from None

    def kill(self) -> None:
        """Kill the worker's whole session (teardown)."""
        self.controller.give_up_check = None
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def worker(tmp_path: Path, fake_controller: FakeController) -> Iterator[Worker]:
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    made = Worker(tmp_path, fake_controller)
    try:
        yield made
    finally:
        made.kill()


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str, worker: Worker) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` or when the worker exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        gone = worker.exited_early()
        if gone:
            raise AssertionError(f"gave up waiting for {what}: {gone}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; stderr:\n{worker.stderr()[-2000:]}"
            )
        time.sleep(0.05)


def traced_task() -> FakeTask:
    return FakeTask(
        "task-" + uuid.uuid4().hex[:10],
        [script("show", 'echo "traceparent=$TRACEPARENT"')],
    )


def run_one_task_exporting_to(
    received: Received, endpoint: str, protocol: str, worker: Worker, controller: FakeController
) -> None:
    task = controller.queue_task(traced_task())
    worker.start(
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    controller.wait_for(lambda: controller.task(task.task_id).stopped, 30, "TaskStopped")

    def task_span_seen() -> bool:
        return any(
            span.name == TASK_SPAN_NAME
            and any(
                a.key == "cirrus.task_id" and a.value.string_value == task.task_id
                for a in span.attributes
            )
            for span in received.spans()
        )

    assert received.wait_until(task_span_seen, 15), [s.name for s in received.spans()]
    assert received.wait_until(lambda: received.metric_names() >= EXPECTED_METRICS, 15), (
        EXPECTED_METRICS - received.metric_names()
    )

    span = next(s for s in received.spans() if s.name == TASK_SPAN_NAME)
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["cirrus.upstream_worker_name"].string_value == worker.name
    assert attributes["cirrus.upstream_hostname"].string_value == controller.url.removeprefix(
        "http://"
    )
    assert attributes["instance_type"].string_value == "none"
    steps = {s.name for s in received.spans() if s.parent_span_id == span.span_id}
    assert steps == {"create-instance", "command/show", "clean-up"}
    # The command ran inside the task's span.
    traceparent = f"00-{span.trace_id.hex()}-{span.span_id.hex()}-"  # then the trace flags
    assert f"traceparent={traceparent}" in controller.task(task.task_id).log_text("show")
    assert any(r.get("service.name") == "cirrus-worker" for r in received.resource_attributes())

    assert worker.stop() == 0
    assert "Traceback" not in worker.stderr()


def test_metrics_and_the_task_span_reach_an_otlp_http_collector(
    worker: Worker, fake_controller: FakeController
) -> None:
    receiver = HttpOtlpReceiver()
    receiver.start()
    try:
        run_one_task_exporting_to(
            receiver.received, receiver.endpoint, "http/protobuf", worker, fake_controller
        )
    finally:
        receiver.stop()


def test_metrics_and_the_task_span_reach_an_otlp_grpc_collector(
    worker: Worker, fake_controller: FakeController
) -> None:
    receiver = GrpcOtlpReceiver()
    receiver.start()
    try:
        run_one_task_exporting_to(
            receiver.received, receiver.endpoint, "grpc", worker, fake_controller
        )
    finally:
        receiver.stop()


def test_listen_serves_health_readiness_after_registration_and_prometheus_metrics(
    worker: Worker, fake_controller: FakeController
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, trust_env=False, timeout=5)

    def status(path: str) -> int | None:
        try:
            return client.get(path).status_code
        except httpx.TransportError:
            return None

    with client:
        with fake_controller.outage():
            # The controller answers 503 to everything: alive, but not registered: not ready.
            worker.start("--listen", f"127.0.0.1:{port}", env=NO_OTLP_EXPORT)
            wait_until(lambda: status("/healthz") == 200, 20, "/healthz", worker)
            fake_controller.wait_for(lambda: fake_controller.calls("Register"), 20, "a Register")
            assert status("/readyz") == 503
            assert not fake_controller.successful_calls("Register")

        wait_until(lambda: status("/readyz") == 200, 30, "/readyz 200 after registering", worker)
        task = fake_controller.queue_task(traced_task())
        fake_controller.wait_for(lambda: fake_controller.task(task.task_id).stopped, 30, "task")

        # The task's own metrics are recorded once TaskStopped was delivered, which the fake
        # controller sees a moment before the worker goes on: wait for them, not for a time.
        def every_metric_served() -> bool:
            text = client.get("/metrics").text
            return all(name.replace(".", "_") in text for name in EXPECTED_METRICS)

        wait_until(every_metric_served, 10, "every metric on /metrics", worker)
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        for name in EXPECTED_METRICS:
            assert name.replace(".", "_") in metrics.text, name
        assert 'name="slots"' in metrics.text
        assert 'method="Poll"' in metrics.text

        # Polls fail from now on: no longer ready once three poll intervals went by.
        with fake_controller.outage():
            wait_until(lambda: status("/readyz") == 503, 30, "/readyz 503 in an outage", worker)
            assert status("/healthz") == 200
    assert worker.stop() == 0


def test_a_sigterm_as_soon_as_healthz_answers_drains_the_worker(worker: Worker) -> None:
    """Signals are handled before the probe server answers: the first SIGTERM is never fatal."""
    port = free_port()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as client:

        def healthy() -> bool:
            try:
                return client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        worker.start("--listen", f"127.0.0.1:{port}", env=NO_OTLP_EXPORT)
        wait_until(healthy, 20, "/healthz", worker)
    assert worker.stop() == 0, worker.stderr()
    assert "draining" in worker.stderr()


def test_without_an_otlp_endpoint_nothing_is_exported_no_failure_is_logged_and_metrics_serve(
    worker: Worker, fake_controller: FakeController
) -> None:
    """No ``OTEL_*`` variable at all (``Worker.start`` drops them): /metrics only, no export."""
    port = free_port()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as client:

        def counted() -> bool:
            try:
                return TASKS_COUNT.replace(".", "_") in client.get("/metrics").text
            except httpx.TransportError:
                return False

        task = fake_controller.queue_task(traced_task())
        worker.start("--listen", f"127.0.0.1:{port}")
        fake_controller.wait_for(lambda: fake_controller.task(task.task_id).stopped, 30, "task")
        wait_until(counted, 10, "the task counted on /metrics", worker)
    assert worker.stop() == 0, worker.stderr()
    stderr = worker.stderr()
    assert "telemetry export" not in stderr, stderr[-3000:]
    assert "4318" not in stderr, stderr[-3000:]


def test_listen_on_a_public_address_needs_listen_public(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CIRRUS), "worker", "run", "--token", "t", "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CIRRUS_")},
    )
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "--listen" in lines[0]
    assert "loopback" in lines[0]
