"""Reports about a task once it stopped, oversized log chunks and the per-task log quota, over
real HTTP with a raw Twirp client (issue 14, item 4)."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from adapters.storage.sqlite_store import SqliteStore
from app.controller.server import create_app
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    CI,
    REGISTRATION_TOKEN,
    RunningController,
    ShiftableClock,
    WorkerClient,
    serve_controller,
)

pytestmark = pytest.mark.integration

ONE_TASK = """
task:
  name: build
  script: echo hi
"""

MIB = 1024 * 1024


async def _running_task(controller: RunningController) -> tuple[WorkerClient, dict[str, Any]]:
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    return worker, task


async def _log(controller: RunningController, task_id: str, command: str) -> bytes:
    response = await controller.api("GET", f"/api/v1/tasks/{task_id}/logs/{command}")
    assert response.status_code == 200, response.text
    return response.content


def _append_body(command: str, data: bytes) -> dict[str, Any]:
    return {"commandName": command, "data": base64.b64encode(data).decode()}


async def test_a_stopped_task_refuses_command_updates_and_logs_with_failed_precondition(
    controller: RunningController,
) -> None:
    worker, task = await _running_task(controller)
    await worker.append_logs(task, "main", b"hi\n")
    await worker.report(task, "main", "COMPLETED", 1000)
    await worker.finished(task, {"main": "COMPLETED"})
    await worker.stopped(task)
    headers = worker.task_headers(task)
    late_update = {"updates": [{"name": "main", "status": "FAILED"}]}
    late_finish = {"commandResults": [{"name": "main", "status": "FAILED"}]}
    answers = {
        "ReportCommandUpdates": await worker.call(CI, "ReportCommandUpdates", late_update, headers),
        "AppendLogs": await worker.call(CI, "AppendLogs", _append_body("main", b"late\n"), headers),
        "ReportAgentFinished": await worker.call(CI, "ReportAgentFinished", late_finish, headers),
    }
    for method, answer in answers.items():
        assert answer.status_code == 412, (method, answer.text)
        assert answer.json()["code"] == "failed_precondition"
        assert "has stopped" in answer.json()["msg"]
    shown = await controller.task(task["taskId"])
    assert shown["status"] == "COMPLETED"
    assert [c["status"] for c in shown["commands"] if c["name"] == "main"] == ["COMPLETED"]
    assert await _log(controller, task["taskId"], "main") == b"hi\n"
    # TaskStopped itself stays idempotent: a worker that missed the answer may send it again.
    await worker.stopped(task)


async def test_a_failed_task_still_takes_logs_until_it_stops(
    controller: RunningController,
) -> None:
    worker, task = await _running_task(controller)
    await worker.failed(task, "the instance broke")
    await worker.append_logs(task, "main", b"last words\n")
    await worker.stopped(task)
    assert await _log(controller, task["taskId"], "main") == b"last words\n"


async def test_a_log_chunk_over_1_mib_is_refused_and_one_of_1_mib_is_kept(
    controller: RunningController,
) -> None:
    worker, task = await _running_task(controller)
    headers = worker.task_headers(task)
    oversized = await worker.call(CI, "AppendLogs", _append_body("main", b"x" * (MIB + 1)), headers)
    assert oversized.status_code == 400, oversized.text
    assert oversized.json()["code"] == "invalid_argument"
    assert "1 MiB" in oversized.json()["msg"]
    answer = await worker.append_logs(task, "main", b"y" * MIB)
    assert int(answer["bytesLogged"]) == MIB
    assert await _log(controller, task["taskId"], "main") == b"y" * MIB


async def test_a_task_over_its_log_quota_keeps_the_quota_and_says_so_once(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        clock = ShiftableClock()
        store = await SqliteStore.open(tmp_path / "controller.db", clock)
        stack.push_async_callback(store.aclose)
        app = create_app(
            store,
            registration_token=REGISTRATION_TOKEN,
            admin_token=ADMIN_TOKEN,
            poll_interval_seconds=5,
            clock=clock,
            log_quota_bytes=100,
        )
        controller = await serve_controller(stack, app, clock, 5)
        worker, task = await _running_task(controller)
        await worker.append_logs(task, "clone", b"c" * 40)
        await worker.append_logs(task, "main", b"m" * 50)
        crossing = await worker.append_logs(task, "main", b"n" * 30)
        assert int(crossing["bytesLogged"]) == 30  # acknowledged: a retry could not help
        await worker.append_logs(task, "main", b"dropped\n")
        await worker.append_logs(task, "clone", b"dropped too\n")
        main = await _log(controller, task["taskId"], "main")
        assert main.startswith(b"m" * 50 + b"n" * 10 + b"\n--- cirrus: this task's log quota")
        assert main.count(b"quota") == 1
        assert main.endswith(b"further output is dropped ---\n")
        assert await _log(controller, task["taskId"], "clone") == b"c" * 40
