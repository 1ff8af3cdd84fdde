"""The project's example build (``examples/.cirrus.yml``, the one the README runs) run to
``COMPLETED`` by a client shaped like the original Go worker and agent, over gRPC: it polls,
starts each task, runs the task's commands itself with subprocess and reports them, then stops
the task, as ``cirrus worker run`` and ``cirrus agent`` would."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.grpc_go_client import GoWorker, run_commands
from tests.integration.test_controller_cli import printed_token, start_controller
from tests.integration.test_grpc_services import grpc_address

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / ".cirrus.yml"
BUILD_TIMEOUT = 90.0


def test_a_go_shaped_worker_runs_the_example_build_to_completed(tmp_path: Path) -> None:
    process, url = start_controller(
        tmp_path, tmp_path / "controller.db", "--grpc-listen", "127.0.0.1:0"
    )
    output = process.stdout()
    admin = printed_token(output, "admin token")
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    worker = GoWorker(grpc_address(process), printed_token(output, "registration token"), "mini")
    try:
        submitted = api.post("/api/v1/builds", json={"config": EXAMPLE.read_text()})
        assert submitted.status_code == 201, submitted.text
        build_id = submitted.json()["id"]
        worker.register()
        ran: list[str] = []
        deadline = time.monotonic() + BUILD_TIMEOUT
        while api.get(f"/api/v1/builds/{build_id}").json()["status"] not in (
            "COMPLETED",
            "FAILED",
            "ABORTED",
        ):
            assert time.monotonic() < deadline, f"build not done; ran {ran}"
            for task in worker.poll().tasks_to_start:
                worker.task_started(task)
                workdir = tmp_path / f"task-{task.task_id}"
                workdir.mkdir()
                agent = worker.agent(task)
                run_commands(agent, workdir)
                agent.close()
                worker.task_stopped(task)
                ran.append(task.task_id)
        build = api.get(f"/api/v1/builds/{build_id}").json()
        assert build["status"] == "COMPLETED", build
        assert sorted(t["name"] for t in build["tasks"]) == ["lint", "package", "unit_test"]
        unit_test = next(t for t in build["tasks"] if t["name"] == "unit_test")
        commands = api.get(f"/api/v1/tasks/{unit_test['id']}").json()["commands"]
        statuses = {c["name"]: c["status"] for c in commands}
        assert statuses["test"] == "COMPLETED"
        assert statuses["report"] == "SKIPPED"  # on_failure: nothing failed
        assert statuses["cleanup"] == "COMPLETED"  # always
        log = api.get(f"/api/v1/tasks/{unit_test['id']}/logs/test").text
        assert "running the unit suite" in log
    finally:
        worker.close()
        api.close()
        assert process.terminate() == 0, process.stderr()
