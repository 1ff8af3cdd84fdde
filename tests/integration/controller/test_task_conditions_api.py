"""Task conditions through a real controller: a task skipped by ``skip``, an ``allow_failures``
task that fails, a manual task and ``POST /api/v1/tasks/{id}/trigger``, and ``alias``.

Builds are stored with ``TaskSpec`` objects and released as a submission releases them
(``advance_build``), so that these tests do not depend on the configuration parser; workers and
users then speak raw Twirp JSON and HTTP to the served controller.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.storage.sqlite_store import SqliteStore
from domain.build import BuildSpec, TaskSpec
from domain.protocol import Command, ScriptInstruction
from tests.integration.cirrus_command import run_cirrus
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    Json,
    RunningController,
    WorkerClient,
    serve_on_sqlite,
)

pytestmark = pytest.mark.integration

SCRIPT = (Command("main", ScriptInstruction(("true",))),)


def task(name: str, **conditions: Any) -> TaskSpec:
    """A task with one script command and the given ``TaskSpec`` fields."""
    return TaskSpec(name, commands=SCRIPT, **conditions)


@dataclass
class Served:
    """A served controller and the store behind it."""

    controller: RunningController
    store: SqliteStore

    async def create(self, *tasks: TaskSpec) -> dict[str, str]:
        """Store a build as a submission would and release it; return task ids by name."""
        build = await self.store.create_build(BuildSpec(tasks=tasks))
        scheduler = self.controller.runtime.scheduler
        await scheduler.advance_build(build.id)
        await scheduler.build_submitted()
        return {record.name: record.id for record in build.tasks} | {"build": build.id}

    async def worker(self) -> WorkerClient:
        """A registered worker."""
        worker = self.controller.worker("w1")
        await worker.register()
        return worker

    async def trigger(self, task_id: str, *, token: str | None = ADMIN_TOKEN) -> tuple[int, Json]:
        """``POST /api/v1/tasks/{id}/trigger``: the HTTP status and the JSON answer."""
        response = await self.controller.api(
            "POST", f"/api/v1/tasks/{task_id}/trigger", token=token
        )
        answer: Json = response.json()
        return response.status_code, answer


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A controller with a 2 s poll interval on a SQLite store the test can also use."""
    async with AsyncExitStack() as stack:
        yield Served(*await serve_on_sqlite(stack, tmp_path, 2))


async def _started(worker: WorkerClient) -> list[str]:
    return [started["taskId"] for started in (await worker.poll())["tasksToStart"]]


async def _cli(served: Served, *args: str) -> tuple[int, str, str]:
    """Run ``cirrus ARGS --controller URL`` with the admin token in its environment; return its
    exit code, stdout and stderr (the controller serves on this test's event loop meanwhile)."""
    token = {"CIRRUS_TOKEN": ADMIN_TOKEN}
    return await run_cirrus(*args, "--controller", served.controller.url, environment=token)


async def test_a_skipped_task_shows_its_reason_and_its_dependants_run(served: Served) -> None:
    ids = await served.create(
        task("lint", skip_reason="skip: $CIRRUS_BRANCH == 'docs'"),
        task("publish", depends_on=("lint",)),
    )
    worker = await served.worker()

    lint = await served.controller.task(ids["lint"])
    poll = (await worker.poll())["tasksToStart"]
    await worker.run(poll[0])
    build = await served.controller.build(ids["build"])

    assert (lint["status"], lint["skipReason"]) == ("SKIPPED", "skip: $CIRRUS_BRANCH == 'docs'")
    assert lint["failureMessage"] == ""
    assert [started["taskId"] for started in poll] == [ids["publish"]]
    assert build["status"] == "COMPLETED"
    assert [t["status"] for t in build["tasks"]] == ["SKIPPED", "COMPLETED"]


async def test_a_failing_allow_failures_task_neither_fails_the_build_nor_skips_dependants(
    served: Served,
) -> None:
    ids = await served.create(
        task("nightly", allow_failures=True), task("report", depends_on=("nightly",))
    )
    worker = await served.worker()

    [nightly] = (await worker.poll())["tasksToStart"]
    await worker.run(nightly, status="FAILED")
    [report] = (await worker.poll())["tasksToStart"]
    await worker.run(report)
    build = await served.controller.build(ids["build"])
    shown = await served.controller.task(ids["nightly"])

    assert report["taskId"] == ids["report"]
    assert [t["status"] for t in build["tasks"]] == ["FAILED", "COMPLETED"]
    assert build["status"] == "COMPLETED"
    assert shown["allowFailures"] is True


async def test_a_failed_dependency_without_allow_failures_still_skips_and_fails(
    served: Served,
) -> None:
    ids = await served.create(task("strict"), task("after", depends_on=("strict",)))
    worker = await served.worker()

    [strict] = (await worker.poll())["tasksToStart"]
    await worker.run(strict, status="FAILED")
    build = await served.controller.build(ids["build"])

    assert [t["status"] for t in build["tasks"]] == ["FAILED", "SKIPPED"]
    assert build["status"] == "FAILED"


async def test_a_manual_task_waits_for_its_trigger_then_runs(served: Served) -> None:
    ids = await served.create(task("build"), task("deploy", manual=True, depends_on=("build",)))
    worker = await served.worker()

    [first] = (await worker.poll())["tasksToStart"]
    await worker.run(first)
    waiting = await served.controller.task(ids["deploy"])
    before = await served.controller.build(ids["build"])
    status, answer = await served.trigger(ids["deploy"])
    during = await served.controller.build(ids["build"])
    [deploy] = (await worker.poll())["tasksToStart"]
    await worker.run(deploy)
    after = await served.controller.build(ids["build"])

    assert (waiting["status"], waiting["pendingReason"]) == (
        "CREATED",
        "waiting for a manual trigger",
    )
    assert waiting["triggerType"] == "MANUAL"
    assert before["status"] == "COMPLETED"  # the untriggered task does not hold it open
    assert (status, answer) == (200, {"id": ids["deploy"], "status": "SCHEDULED"})
    assert during["status"] == "EXECUTING"
    assert deploy["taskId"] == ids["deploy"]
    assert after["status"] == "COMPLETED"
    assert [t["status"] for t in after["tasks"]] == ["COMPLETED", "COMPLETED"]


async def test_a_manual_task_triggered_early_still_waits_for_its_dependencies(
    served: Served,
) -> None:
    ids = await served.create(task("build"), task("deploy", manual=True, depends_on=("build",)))
    worker = await served.worker()

    status, answer = await served.trigger(ids["deploy"])
    waiting = await served.controller.task(ids["deploy"])
    started = await _started(worker)

    assert (status, answer["status"]) == (200, "CREATED")
    assert waiting["pendingReason"] == "waiting for build to complete"
    assert started == [ids["build"]]


async def test_triggering_twice_is_harmless_and_other_tasks_cannot_be_triggered(
    served: Served,
) -> None:
    ids = await served.create(task("plain"), task("release", manual=True))

    first = await served.trigger(ids["release"])
    second = await served.trigger(ids["release"])
    plain = await served.trigger(ids["plain"])
    unknown = await served.trigger("999999")
    anonymous = await served.trigger(ids["release"], token=None)

    assert first == (200, {"id": ids["release"], "status": "SCHEDULED"})
    assert second == first
    assert plain == (409, {"error": f"task {ids['plain']} is not a manual task (trigger_type)"})
    assert unknown == (404, {"error": "no such task"})
    assert anonymous[0] == 401


async def test_an_alias_reaches_the_task_environment_and_dependants_name_it(
    served: Served,
) -> None:
    ids = await served.create(
        task("Test Shard 1/2", alias="Tests"),
        task("Test Shard 2/2", alias="Tests"),
        task("deploy", depends_on=("Tests",)),
    )
    worker = await served.worker()  # runs one resource-less task at a time

    [first] = (await worker.poll())["tasksToStart"]
    environment = (await worker.initial_commands(first))["environment"]
    await worker.run(first)
    queued_after_one = (await served.controller.task(ids["deploy"]))["status"]
    [second] = (await worker.poll())["tasksToStart"]
    await worker.run(second)
    [deploy] = (await worker.poll())["tasksToStart"]
    deploy_environment = (await worker.initial_commands(deploy))["environment"]

    assert environment["CIRRUS_TASK_NAME"] == "Test Shard 1/2"
    assert environment["CIRRUS_TASK_NAME_ALIAS"] == "Tests"
    assert queued_after_one == "CREATED"
    assert deploy["taskId"] == ids["deploy"]
    assert "CIRRUS_TASK_NAME_ALIAS" not in deploy_environment


async def test_the_openapi_document_describes_the_trigger(served: Served) -> None:
    document = (await served.controller.api("GET", "/openapi.json", token=None)).json()

    trigger = document["paths"]["/api/v1/tasks/{id}/trigger"]["post"]
    assert set(trigger["responses"]) == {"200", "401", "403", "404", "409", "503"}
    assert {"alias", "allowFailures", "triggerType", "skipReason"} <= set(
        document["components"]["schemas"]["Task"]["properties"]
    )


async def test_cirrus_task_trigger_starts_a_manual_task(served: Served) -> None:
    ids = await served.create(task("release", manual=True), task("notes", manual=True))

    plain = await _cli(served, "task", "trigger", ids["release"])
    as_json = await _cli(served, "task", "trigger", ids["notes"], "--json")

    assert plain == (0, f"task {ids['release']}: SCHEDULED\n", "")
    assert as_json[0] == 0
    assert json.loads(as_json[1]) == {"id": ids["notes"], "status": "SCHEDULED"}


async def test_cirrus_task_trigger_of_a_task_that_is_not_manual_is_exit_1_on_one_line(
    served: Served,
) -> None:
    ids = await served.create(task("plain"))

    code, out, err = await _cli(served, "task", "trigger", ids["plain"])
    unknown = await _cli(served, "task", "trigger", "999999")

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert f"task {ids['plain']} is not a manual task" in err
    assert unknown[0] == 1
    assert "no such task" in unknown[2]
