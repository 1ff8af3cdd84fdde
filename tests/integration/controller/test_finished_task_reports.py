"""Reports about a task once it stopped, oversized log chunks and the per-task log quota, over
real HTTP with a raw Twirp client (issue 14, item 4)."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.integration.controller.conftest import (
    CI,
    RunningController,
    serve_on_sqlite,
)

pytestmark = pytest.mark.integration

ONE_TASK = """
task:
  name: build
  script: echo hi
"""

MIB = 1024 * 1024


def _append_body(command: str, data: bytes) -> dict[str, Any]:
    return {"commandName": command, "data": base64.b64encode(data).decode()}


async def test_a_stopped_task_refuses_command_updates_and_logs_with_failed_precondition(
    controller: RunningController,
) -> None:
    worker, task = await controller.running_task(ONE_TASK)
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
    assert await controller.log(task["taskId"], "main") == b"hi\n"
    # TaskStopped itself stays idempotent: a worker that missed the answer may send it again.
    await worker.stopped(task)


async def test_a_failed_task_still_takes_logs_until_it_stops(
    controller: RunningController,
) -> None:
    worker, task = await controller.running_task(ONE_TASK)
    await worker.failed(task, "the instance broke")
    await worker.append_logs(task, "main", b"last words\n")
    await worker.stopped(task)
    assert await controller.log(task["taskId"], "main") == b"last words\n"


async def test_a_log_chunk_over_1_mib_is_refused_and_one_of_1_mib_is_kept(
    controller: RunningController,
) -> None:
    worker, task = await controller.running_task(ONE_TASK)
    headers = worker.task_headers(task)
    oversized = await worker.call(CI, "AppendLogs", _append_body("main", b"x" * (MIB + 1)), headers)
    assert oversized.status_code == 400, oversized.text
    assert oversized.json()["code"] == "invalid_argument"
    assert "1 MiB" in oversized.json()["msg"]
    answer = await worker.append_logs(task, "main", b"y" * MIB)
    assert int(answer["bytesLogged"]) == MIB
    assert await controller.log(task["taskId"], "main") == b"y" * MIB


async def test_a_task_over_its_log_quota_keeps_the_quota_and_says_so_once(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        controller, _store = await serve_on_sqlite(stack, tmp_path, log_quota_bytes=100)
        worker, task = await controller.running_task(ONE_TASK)
        await worker.append_logs(task, "clone", b"c" * 40)
        await worker.append_logs(task, "main", b"m" * 50)
        crossing = await worker.append_logs(task, "main", b"n" * 30)
        assert int(crossing["bytesLogged"]) == 30  # acknowledged: a retry could not help
        await worker.append_logs(task, "main", b"dropped\n")
        await worker.append_logs(task, "clone", b"dropped too\n")
        main = await controller.log(task["taskId"], "main")
        assert main.startswith(b"m" * 50 + b"n" * 10 + b"\n--- cirrus: this task's log quota")
        assert main.count(b"quota") == 1
        assert main.endswith(b"further output is dropped ---\n")
        assert await controller.log(task["taskId"], "clone") == b"c" * 40
