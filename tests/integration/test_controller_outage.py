"""A real ``cirrus controller run`` stopped for longer than the liveness window while a task runs,
then started again on the same database: a worker that comes back within the window keeps its
task (issue 14, item 1). The worker is a raw Twirp client, so that the test decides exactly
when it calls again."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_controller_cli import Process, start_controller, wait_for

pytestmark = pytest.mark.integration

REGISTRATION = "registration-token-for-outage-tests"
ADMIN = "admin-token-for-outage-tests"
PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc"
WINDOW = 12.0
"""The liveness window the controller runs with (``--worker-offline-after``, more than its 10 s
poll interval): it sweeps every ``WINDOW / 3`` seconds, so the first sweep after a restart
comes 4 s after it starts."""

COMES_BACK_AFTER = 5.5
"""When the worker calls again after the restart: after the first sweep, within the window."""


class RawWorker:
    """A worker speaking Twirp JSON by hand."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.session = ""
        self.url = ""

    def call(self, service: str, method: str, body: dict[str, Any], task: Any = None) -> Any:
        """Make one Twirp call that must succeed; return its JSON answer."""
        headers = {
            "Content-Type": "application/json",
            "registration-token": REGISTRATION,
            "session-token": self.session,
            "worker-name": self.name,
        }
        if task is not None:
            headers["org.cirruslabs.task-id"] = task["taskId"]
            headers["org.cirruslabs.client-secret"] = task["clientSecret"]
        answer = httpx.post(
            f"{self.url}/twirp/{PACKAGE}.{service}/{method}", json=body, headers=headers, timeout=30
        )
        assert answer.status_code == 200, (method, answer.text)
        return answer.json()

    def register(self) -> None:
        """Register and keep the session token."""
        info = {"labels": {"name": self.name}}
        answer = self.call(
            "CirrusWorkersService",
            "Register",
            {"registrationToken": REGISTRATION, "workerInfo": info},
        )
        self.session = answer["sessionToken"]

    def poll(self, running: list[str]) -> Any:
        """Poll once, listing the tasks it runs."""
        body = {"workerInfo": {"labels": {"name": self.name}}, "runningTasks": running}
        return self.call("CirrusWorkersService", "Poll", body)


def _controller(tmp_path: Path, database: Path) -> tuple[Process, str]:
    return start_controller(
        tmp_path,
        database,
        "--registration-token",
        REGISTRATION,
        "--admin-token",
        ADMIN,
        "--worker-offline-after",
        str(WINDOW),
    )


def _api(url: str, method: str, path: str, **kwargs: Any) -> Any:
    answer = httpx.request(
        method, url + path, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30, **kwargs
    )
    assert answer.status_code < 300, answer.text
    return answer.json() if "json" in answer.headers.get("content-type", "") else answer.content


def test_a_worker_back_within_the_window_after_a_long_controller_outage_keeps_its_task(
    tmp_path: Path,
) -> None:
    database = tmp_path / "controller.db"
    first, url = _controller(tmp_path, database)
    worker = RawWorker("w1")
    worker.url = url
    try:
        worker.register()
        _api(url, "POST", "/api/v1/builds", json={"config": "task:\n  script: echo hi\n"})
        [task] = wait_for(lambda: worker.poll([])["tasksToStart"], 30, "the task")
        worker.call("CirrusWorkersService", "TaskStarted", {}, task)
        worker.call("CirrusCIService", "InitialCommands", {}, task)
        log = {"commandName": "main", "data": base64.b64encode(b"before\n").decode()}
        worker.call("CirrusCIService", "AppendLogs", log, task)
    finally:
        assert first.terminate() == 0
    outage_ends = time.monotonic() + WINDOW + 2  # the outage under test outlasts the window

    wait_for(lambda: time.monotonic() > outage_ends, WINDOW + 5, "the outage to last")
    second, worker.url = _controller(tmp_path, database)
    restarted = time.monotonic()
    try:
        # The worker's retry comes when it comes; here, after the controller's first sweep.
        wait_for(lambda: time.monotonic() > restarted + COMES_BACK_AFTER, 10, "the retry time")
        answer = worker.poll([task["taskId"]])
        assert task["taskId"] not in answer.get("tasksToStop", [])
        log = {"commandName": "main", "data": base64.b64encode(b"after\n").decode()}
        worker.call("CirrusCIService", "AppendLogs", log, task)
        update = {"updates": [{"name": "main", "status": "COMPLETED"}]}
        worker.call("CirrusCIService", "ReportCommandUpdates", update, task)
        worker.call("CirrusWorkersService", "TaskStopped", {}, task)
        shown = _api(worker.url, "GET", f"/api/v1/tasks/{task['taskId']}")
        assert (shown["status"], shown.get("failureMessage", "")) == ("COMPLETED", "")
        logged = _api(worker.url, "GET", f"/api/v1/tasks/{task['taskId']}/logs/main")
        assert logged == b"before\nafter\n"
    finally:
        assert second.terminate() == 0
