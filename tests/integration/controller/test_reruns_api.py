"""Re-runs through a real controller: ``POST /api/v1/tasks/{id}/rerun`` and
``POST /api/v1/builds/{id}/rerun``, the new attempts run by a worker speaking Twirp."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.controller.conftest import (
    ControllerFactory,
    Json,
    RunningController,
    WorkerClient,
)

pytestmark = pytest.mark.integration

CONFIG = """
build_task:
  script: make
test_task:
  depends_on: build
  script: make test
lint_task:
  script: make lint
"""


async def run_all(
    controller: RunningController, worker: WorkerClient, build_id: str, outcomes: dict[str, str]
) -> Json:
    """Run every task the worker is handed, each to its name's outcome, until the build ends;
    return the build."""
    while (build := await controller.build(build_id))["status"] == "EXECUTING":
        for task in (await worker.poll())["tasksToStart"]:
            name = (await controller.task(task["taskId"]))["name"]
            await worker.run(task, outcomes[name])
    return build


async def failed_build(controller: RunningController) -> tuple[Json, WorkerClient]:
    """A build whose ``build`` task failed (so ``test`` was skipped) and ``lint`` completed."""
    build = await controller.submit(CONFIG)
    worker = controller.worker("w1")
    await worker.register()
    outcomes = {"build": "FAILED", "test": "COMPLETED", "lint": "COMPLETED"}
    ended = await run_all(controller, worker, build["id"], outcomes)
    assert ended["status"] == "FAILED"
    return ended, worker


def ids_by_name(build: Json) -> dict[str, str]:
    """The id of each task of a build answer, by name."""
    return {task["name"]: task["id"] for task in build["tasks"]}


async def rerun(
    controller: RunningController, path: str, body: Json | None = None
) -> httpx.Response:
    """``POST`` a re-run path of the API with the admin token."""
    return await controller.api("POST", path, body)


@pytest.fixture
async def fast(start_controller: ControllerFactory) -> RunningController:
    """A controller whose idle polls are answered after a second."""
    return await start_controller(poll_interval=1)


async def test_rerunning_a_failed_task_runs_new_attempts_of_it_and_its_dependant(
    fast: RunningController,
) -> None:
    build, worker = await failed_build(fast)
    first = ids_by_name(build)
    response = await rerun(fast, f"/api/v1/tasks/{first['build']}/rerun")
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "SCHEDULED"
    assert [(a["name"], a["attempt"], a["rerunOf"]) for a in answer["attempts"]] == [
        ("build", 2, first["build"]),
        ("test", 2, first["test"]),
    ]
    assert answer["id"] == answer["attempts"][0]["id"]
    reopened = await fast.build(build["id"])
    assert reopened["status"] == "EXECUTING"
    latest = ids_by_name(reopened)
    assert latest == {
        "build": answer["id"],
        "test": answer["attempts"][1]["id"],
        "lint": first["lint"],
    }
    assert (await fast.task(latest["test"]))["pendingReason"] == "waiting for build to complete"
    outcomes = {"build": "COMPLETED", "test": "COMPLETED", "lint": "FAILED"}
    ended = await run_all(fast, worker, build["id"], outcomes)
    assert ended["status"] == "COMPLETED"
    assert [t["attempt"] for t in ended["tasks"]] == [2, 2, 1]
    old = await fast.task(first["build"])
    assert (old["status"], old["attempt"], old["rerunOf"]) == ("FAILED", 1, None)
    new = await fast.task(latest["test"])
    assert (new["status"], new["attempt"], new["rerunOf"]) == ("COMPLETED", 2, first["test"])


async def test_a_task_that_is_not_final_cannot_be_rerun(controller: RunningController) -> None:
    build = await controller.submit(CONFIG)
    task_id = ids_by_name(build)["build"]
    response = await rerun(controller, f"/api/v1/tasks/{task_id}/rerun")
    assert response.status_code == 409
    assert response.json()["error"] == (
        f"task {task_id} is SCHEDULED: only a final task can be re-run"
    )


async def test_an_earlier_attempt_cannot_be_rerun_again(fast: RunningController) -> None:
    build, _ = await failed_build(fast)
    first = ids_by_name(build)["lint"]
    assert (await rerun(fast, f"/api/v1/tasks/{first}/rerun")).status_code == 201
    second = await rerun(fast, f"/api/v1/tasks/{first}/rerun")
    assert second.status_code == 409
    assert "is an earlier attempt; re-run its latest attempt" in second.json()["error"]


async def test_a_build_rerun_of_failed_tasks_reruns_them_and_their_dependants_only(
    fast: RunningController,
) -> None:
    build, _ = await failed_build(fast)
    first = ids_by_name(build)
    response = await rerun(fast, f"/api/v1/builds/{build['id']}/rerun", {"failedOnly": True})
    assert response.status_code == 201, response.text
    attempts = response.json()["attempts"]
    assert [(a["name"], a["rerunOf"]) for a in attempts] == [
        ("build", first["build"]),
        ("test", first["test"]),
    ]
    # A rerun of the whole build takes the final tasks only: the new attempts still wait.
    everything = await rerun(fast, f"/api/v1/builds/{build['id']}/rerun", {"failedOnly": False})
    assert everything.status_code == 201, everything.text
    assert [(a["name"], a["rerunOf"]) for a in everything.json()["attempts"]] == [
        ("lint", first["lint"])
    ]


async def test_a_build_without_failed_tasks_has_nothing_to_rerun(fast: RunningController) -> None:
    build = await fast.submit(CONFIG)
    worker = fast.worker("w1")
    await worker.register()
    await run_all(fast, worker, build["id"], dict.fromkeys(("build", "test", "lint"), "COMPLETED"))
    response = await rerun(fast, f"/api/v1/builds/{build['id']}/rerun", {"failedOnly": True})
    assert response.status_code == 409
    assert response.json()["error"] == "the build has no failed or aborted task to re-run"


async def test_rerun_requests_naming_nothing_or_with_a_bad_body_are_refused(
    controller: RunningController,
) -> None:
    assert (await rerun(controller, "/api/v1/tasks/999/rerun")).status_code == 404
    assert (await rerun(controller, "/api/v1/builds/999/rerun", {})).status_code == 404
    build = await controller.submit(CONFIG)
    bad = await rerun(controller, f"/api/v1/builds/{build['id']}/rerun", {"failed": True})
    assert bad.status_code == 400
    assert "failed" in bad.json()["error"]
