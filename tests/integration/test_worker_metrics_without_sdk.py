"""``OTEL_SDK_DISABLED=true`` turns OTLP export off, but ``--listen`` still serves ``/metrics``."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.fake_controller import FakeController
from tests.integration.test_worker_run import WorkerProcess

pytestmark = pytest.mark.integration

WORKER_METRIC = "org_cirruslabs_persistent_worker_tasks_running_count"


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def worker(tmp_path: Path, fake_controller: FakeController) -> Iterator[WorkerProcess]:
    """A not yet started worker bound to the fake controller; killed at teardown."""
    process = WorkerProcess(tmp_path, fake_controller)
    fake_controller.give_up_check = process.exited_early
    try:
        yield process
    finally:
        fake_controller.give_up_check = None
        process.kill()


def test_metrics_are_served_with_the_sdk_disabled(
    worker: WorkerProcess, fake_controller: FakeController, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    port = free_port()
    worker.start(None, "--listen", f"127.0.0.1:{port}")
    fake_controller.wait_for_call("Poll", timeout=30)

    deadline = time.monotonic() + 30
    text = ""
    while WORKER_METRIC not in text:
        assert worker.running(), worker.stderr()[-3000:]
        assert time.monotonic() < deadline, f"no worker metrics on /metrics:\n{text}"
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            text = answer.text if answer.status_code == 200 else ""
        except httpx.TransportError:
            text = ""
        if WORKER_METRIC not in text:
            time.sleep(0.1)
    assert f"{WORKER_METRIC}{{" in text
    assert "Traceback" not in worker.output()
