"""The controller over real HTTP: Twirp calls of workers and the HTTP API of users."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    CI,
    REGISTRATION_TOKEN,
    WORKERS,
    ControllerFactory,
    Json,
    RunningController,
    wait_for,
)

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")

ONE_TASK = """
task:
  name: build
  env:
    GREETING: hello
  script: echo hi
"""


async def test_health_and_the_openapi_document_need_no_token(
    controller: RunningController,
) -> None:
    health = await controller.api("GET", "/healthz", token=None)
    document = await controller.api("GET", "/openapi.json", token=None)

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.1")
    assert "/api/v1/tasks/{id}/logs/{command}" in document.json()["paths"]


async def test_a_held_poll_gets_a_submitted_task_well_before_the_interval(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    polling = asyncio.create_task(worker.poll())
    await controller.until_polls_held()

    submitted = time.monotonic()
    build = await controller.submit(ONE_TASK)
    answer = await polling
    elapsed = time.monotonic() - submitted

    assert elapsed < 1.0 < controller.poll_interval
    assert answer["pollIntervalInSeconds"] == controller.poll_interval
    [task] = answer["tasksToStart"]
    assert task["taskId"] == build["tasks"][0]["id"]
    assert task["clientSecret"]
    assert task["serverSecret"]
    assert task["isolation"] == {"none": {}}
    assert (await controller.task(task["taskId"]))["worker"] == "w1"


async def test_a_task_runs_to_completed_and_its_log_can_be_read(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    build = await controller.submit(ONE_TASK, {"FROM_SUBMIT": "yes"})
    assert build["status"] == "EXECUTING"
    assert build["tasks"][0]["status"] == "SCHEDULED"
    [task] = (await worker.poll())["tasksToStart"]

    await worker.started(task)
    commands = await worker.initial_commands(task)
    await worker.report(task, "clone", "COMPLETED")
    logged = await worker.append_logs(task, "main", b"hi\n")
    await worker.report(task, "main", "EXECUTING")
    running = await controller.task(task["taskId"])
    await worker.finished(task, {"clone": "COMPLETED", "main": "COMPLETED"})
    await worker.stopped(task)

    assert commands["environment"]["GREETING"] == "hello"
    assert commands["environment"]["FROM_SUBMIT"] == "yes"
    assert commands["environment"]["CIRRUS_TASK_ID"] == task["taskId"]
    # Every task starts with the automatic clone, as on Cirrus.
    assert [c["name"] for c in commands["commands"]] == ["clone", "main"]
    assert commands["commands"][1]["scriptInstruction"]["scripts"] == ["echo hi"]
    assert int(commands["timeoutInSeconds"]) == 3600
    assert int(logged["bytesLogged"]) == 3
    assert running["status"] == "EXECUTING"
    assert running["commands"] == [
        {"name": "clone", "status": "COMPLETED", "durationInNanos": 0},
        {"name": "main", "status": "EXECUTING", "durationInNanos": 0},
    ]
    done = await controller.task(task["taskId"])
    assert done["status"] == "COMPLETED"
    assert [c["status"] for c in done["commands"]] == ["COMPLETED", "COMPLETED"]
    assert (await controller.build(build["id"]))["status"] == "COMPLETED"
    log = await controller.api("GET", f"/api/v1/tasks/{task['taskId']}/logs/main")
    assert log.status_code == 200
    assert log.headers["content-type"].startswith("text/plain")
    assert log.content == b"hi\n"


async def test_a_log_larger_than_a_chunk_streams_back_whole(controller: RunningController) -> None:
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    pieces = [bytes([65 + i]) * (1024 * 1024) for i in range(3)]
    for piece in pieces:
        await worker.append_logs(task, "main", piece)

    log = await controller.api("GET", f"/api/v1/tasks/{task['taskId']}/logs/main")

    assert log.content == b"".join(pieces)


async def test_a_failing_command_fails_the_task_and_the_build(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    build = await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]

    await worker.run(task, status="FAILED")

    details = await controller.task(task["taskId"])
    assert details["status"] == "FAILED"
    assert "clone" in details["failureMessage"]  # the first command that failed
    assert (await controller.build(build["id"]))["status"] == "FAILED"


async def test_task_failed_keeps_its_message_after_task_stopped(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]

    await worker.failed(task, "tart is not installed")
    await worker.stopped(task)

    details = await controller.task(task["taskId"])
    assert details["status"] == "FAILED"
    assert details["failureMessage"] == "tart is not installed"


async def test_register_refuses_a_wrong_registration_token(controller: RunningController) -> None:
    worker = controller.worker("w1")
    body = {"registrationToken": "wrong", "workerInfo": worker.info()}

    response = await worker.call(WORKERS, "Register", body, {})

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert "wrong" not in response.text


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("registration-token", "wrong"),
        ("session-token", "wrong"),
        ("session-token", ""),
        ("worker-name", "someone-else"),
        ("worker-name", ""),
    ],
)
async def test_poll_refuses_each_wrong_worker_header(
    controller: RunningController, header: str, value: str
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    other = controller.worker("someone-else")
    await other.register()
    headers = {**worker.headers(), header: value}

    response = await worker.call(WORKERS, "Poll", {"workerInfo": worker.info()}, headers)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("org.cirruslabs.client-secret", "wrong"),
        ("org.cirruslabs.client-secret", ""),
        ("org.cirruslabs.task-id", "999999"),
        ("org.cirruslabs.task-id", ""),
    ],
)
async def test_task_calls_refuse_a_task_that_is_not_the_callers(
    controller: RunningController, header: str, value: str
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    headers = {**worker.task_headers(task), header: value}

    answers = [
        await worker.call(WORKERS, "TaskStarted", {}, headers),
        await worker.call(CI, "InitialCommands", {}, headers),
        await worker.call(CI, "AppendLogs", {"commandName": "main", "data": "aGk="}, headers),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403]
    assert {a.json()["code"] for a in answers} == {"permission_denied"}
    assert (await controller.task(task["taskId"]))["commands"][0]["status"] == "CREATED"


async def test_another_worker_cannot_speak_for_a_task_it_does_not_hold(
    controller: RunningController,
) -> None:
    owner, intruder = controller.worker("w1"), controller.worker("w2")
    await owner.register()
    await intruder.register()
    await controller.submit(ONE_TASK)
    [task] = (await owner.poll())["tasksToStart"]
    headers = {
        **intruder.headers(),
        **{k: v for k, v in owner.task_headers(task).items() if k.startswith("org.")},
    }

    response = await intruder.call(WORKERS, "TaskStopped", {}, headers)

    assert response.status_code == 403
    assert (await controller.task(task["taskId"]))["status"] == "EXECUTING"


async def test_pause_and_resume_speak_with_the_registration_token_alone(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    headers = {"registration-token": REGISTRATION_TOKEN, "session-token": "", "worker-name": "w1"}

    paused = await worker.ok(WORKERS, "UpdateStatus", {"disabled": True}, headers)
    status = await worker.ok(WORKERS, "QueryRunningTasks", {}, headers)
    workers = (await controller.api("GET", "/api/v1/workers")).json()
    resumed = await worker.ok(WORKERS, "UpdateStatus", {"disabled": False}, headers)
    refused = await worker.call(
        WORKERS, "UpdateStatus", {"disabled": True}, {**headers, "registration-token": "x"}
    )

    assert paused == {"disabled": True}
    assert status["status"] == {"disabled": True}
    assert status.get("runningTasks", []) == []
    assert workers[0]["disabled"] is True
    assert resumed == {}
    assert refused.status_code == 401


async def test_a_drained_worker_that_registers_again_gets_tasks_a_paused_one_does_not(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)  # idle polls are held 1 s
    worker = controller.worker("w1")
    await worker.register()
    # ``worker run`` draining on SIGTERM: UpdateStatus with its own session.
    drained = await worker.ok(WORKERS, "UpdateStatus", {"disabled": True}, worker.headers())
    await controller.submit(ONE_TASK)
    idle = await worker.poll()
    await worker.register()  # the restarted worker
    [task] = (await worker.poll())["tasksToStart"]
    await worker.run(task)

    # ``cirrus worker pause``: the registration token alone; a restart does not undo it.
    operator = {"registration-token": REGISTRATION_TOKEN, "session-token": "", "worker-name": "w1"}
    await worker.ok(WORKERS, "UpdateStatus", {"disabled": True}, operator)
    await worker.register()
    await controller.submit(ONE_TASK)
    still_paused = await worker.poll()
    workers = (await controller.api("GET", "/api/v1/workers")).json()

    assert drained == {"disabled": True}
    assert idle.get("tasksToStart", []) == []
    assert still_paused.get("tasksToStart", []) == []
    assert workers[0]["disabled"] is True


async def test_unknown_methods_and_non_json_bodies_get_twirp_errors(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    unknown = await worker.call(WORKERS, "Explode", {}, {})
    not_json = await controller.http.post(
        f"/twirp/org.cirruslabs.ci.services.cirruscigrpc.{WORKERS}/Register",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert unknown.status_code == 404
    assert unknown.json()["code"] == "bad_route"
    assert not_json.status_code == 400
    assert not_json.json()["code"] in {"malformed", "invalid_argument"}


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_the_api_refuses_a_missing_or_wrong_admin_token(
    controller: RunningController, token: str | None
) -> None:
    answers = [
        await controller.api("GET", "/api/v1/workers", token=token),
        await controller.api("POST", "/api/v1/builds", {"config": ONE_TASK}, token=token),
        await controller.api("GET", "/api/v1/tasks/1", token=token),
    ]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all("error" in a.json() for a in answers)
    assert ADMIN_TOKEN not in "".join(a.text for a in answers)


async def test_a_task_whose_labels_no_worker_has_stays_scheduled_with_a_reason(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)
    worker = controller.worker("w1", labels={"gpu": "no"})
    await worker.register()
    build = await controller.submit(
        "task:\n  persistent_worker:\n    labels: {gpu: 'yes'}\n  script: nvidia-smi\n"
    )

    answer = await worker.poll()

    assert answer.get("tasksToStart", []) == []
    task = await controller.task(build["tasks"][0]["id"])
    assert task["status"] == "SCHEDULED"
    assert task["pendingReason"] == "no worker with labels gpu=yes"
    assert task["labels"] == {"gpu": "yes"}


async def test_a_worker_with_two_vm_slots_never_holds_more_than_two_vm_tasks(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)
    worker = controller.worker("mac", resources={"tart-vms": 2})
    await worker.register()
    config = "".join(
        f"t{i}_task:\n  persistent_worker:\n    resources: {{tart-vms: 1}}\n  script: echo ok\n"
        for i in range(3)
    )
    build = await controller.submit(config)

    first = (await worker.poll())["tasksToStart"]
    running = [t["taskId"] for t in first]
    second = (await worker.poll(running, {"tart-vms": 2})).get("tasksToStart", [])
    third_id = next(t["id"] for t in build["tasks"] if t["id"] not in running)
    waiting = await controller.task(third_id)
    await worker.run(first[0])
    after_one_stopped = (await worker.poll(running[1:], {"tart-vms": 1}))["tasksToStart"]

    assert len(first) == 2
    assert all(t["resourcesToUse"] == {"tart-vms": 1} for t in first)
    assert second == []
    assert waiting["status"] == "SCHEDULED"
    assert "tart-vms" in waiting["pendingReason"]
    assert [t["taskId"] for t in after_one_stopped] == [third_id]


async def test_a_cancelled_running_task_is_stopped_through_its_worker_and_aborted(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    build = await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    polling = asyncio.create_task(worker.poll([task["taskId"]]))
    await controller.until_polls_held()

    cancelled = await controller.api("POST", f"/api/v1/tasks/{task['taskId']}/cancel")
    asked = time.monotonic()
    answer = await polling
    elapsed = time.monotonic() - asked
    await worker.report(task, "main", "ABORTED")
    await worker.stopped(task)

    assert cancelled.status_code == 200
    assert cancelled.json() == {"id": task["taskId"], "status": "EXECUTING"}
    assert answer["tasksToStop"] == [task["taskId"]]
    assert elapsed < 1.0
    assert (await controller.task(task["taskId"]))["status"] == "ABORTED"
    assert (await controller.build(build["id"]))["status"] == "ABORTED"


TIMED_TASK = """
task:
  name: slow
  timeout_in: 30s
  script: sleep 60
"""


async def _aborted_after(controller: RunningController, seconds: float) -> tuple[Json, Json]:
    """Run ``TIMED_TASK`` until its command is reported aborted ``seconds`` after it started
    (nothing was cancelled); return the task and the build as the API shows them then."""
    worker = controller.worker("w1")
    await worker.register()
    build = await controller.submit(TIMED_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    controller.clock.advance(seconds)
    await worker.report(task, "main", "ABORTED")
    await worker.stopped(task)
    return await controller.task(task["taskId"]), await controller.build(build["id"])


async def test_a_task_whose_command_was_aborted_after_its_timeout_fails_as_timed_out(
    controller: RunningController,
) -> None:
    # The worker's timer ran out and it aborted the running command; its timer may have
    # started a moment before the controller heard TaskStarted.
    task, build = await _aborted_after(controller, 29.5)
    assert task["status"] == "FAILED"
    assert task["failureMessage"] == 'timed out after 30 s (command "main" was aborted)'
    assert build["status"] == "FAILED"


async def test_a_command_aborted_before_the_timeout_without_a_cancel_aborts_the_task(
    controller: RunningController,
) -> None:
    # The worker cancelled the task itself (its second SIGTERM): not a timeout, not a failure.
    task, build = await _aborted_after(controller, 28)
    assert (task["status"], task["failureMessage"]) == ("ABORTED", "")
    assert build["status"] == "ABORTED"


async def test_a_cancelled_queued_task_is_aborted_at_once(controller: RunningController) -> None:
    build = await controller.submit(ONE_TASK)
    task_id = build["tasks"][0]["id"]

    cancelled = await controller.api("POST", f"/api/v1/tasks/{task_id}/cancel")
    missing = await controller.api("POST", "/api/v1/tasks/424242/cancel")

    assert cancelled.json() == {"id": task_id, "status": "ABORTED"}
    assert missing.status_code == 404


CHAIN = """
first_task:
  script: echo ok
second_task:
  depends_on: first
  script: echo ok
third_task:
  depends_on: [second]
  script: echo ok
"""


async def test_a_dependant_is_queued_and_handed_out_once_its_dependency_completed(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    build = await controller.submit(CHAIN)
    ids = {t["name"]: t["id"] for t in build["tasks"]}
    [first] = (await worker.poll())["tasksToStart"]
    waiting = await controller.task(ids["second"])

    await worker.run(first)
    [second] = (await worker.poll())["tasksToStart"]

    assert [t["status"] for t in build["tasks"]] == ["SCHEDULED", "CREATED", "CREATED"]
    assert first["taskId"] == ids["first"]
    assert waiting["status"] == "CREATED"
    assert "first" in waiting["pendingReason"]
    assert second["taskId"] == ids["second"]


async def test_dependants_of_a_failed_task_are_skipped(controller: RunningController) -> None:
    worker = controller.worker("w1")
    await worker.register()
    build = await controller.submit(CHAIN)
    [first] = (await worker.poll())["tasksToStart"]

    await worker.run(first, status="FAILED")

    statuses = [t["status"] for t in (await controller.build(build["id"]))["tasks"]]
    assert statuses == ["FAILED", "SKIPPED", "SKIPPED"]
    assert (await controller.build(build["id"]))["status"] == "FAILED"


async def test_a_lost_workers_tasks_are_requeued_or_failed_and_it_is_told_to_stop_them(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1", resources={"slots": 2})
    await worker.register()
    config = "".join(
        f"t{i}_task:\n  persistent_worker:\n    resources: {{slots: 1}}\n  script: echo ok\n"
        for i in range(2)
    )
    await controller.submit(config)
    started, unstarted = (await worker.poll())["tasksToStart"]
    await worker.started(started)

    controller.clock.advance(3600)
    lost = await controller.runtime.sweep()
    workers = (await controller.api("GET", "/api/v1/workers")).json()
    failed = await controller.task(started["taskId"])
    requeued = await controller.task(unstarted["taskId"])
    back = await worker.poll([started["taskId"], unstarted["taskId"]], {"slots": 2})
    late = await worker.call(WORKERS, "TaskStopped", {}, worker.task_headers(unstarted))

    assert lost == ["w1"]
    assert workers[0]["online"] is False
    assert failed["status"] == "FAILED"
    assert "worker w1 was lost" in failed["failureMessage"]
    assert requeued["status"] == "SCHEDULED"
    assert requeued["worker"] is None
    assert sorted(back["tasksToStop"]) == sorted([started["taskId"], unstarted["taskId"]])
    assert all(t["taskId"] != unstarted["taskId"] for t in back.get("tasksToStart", []))
    assert late.status_code == 403
    again = (await worker.poll([started["taskId"]]))["tasksToStart"]
    assert [t["taskId"] for t in again] == [unstarted["taskId"]]


async def test_workers_are_listed_with_what_they_reported(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)
    worker = controller.worker("w1", labels={"team": "ios"}, resources={"tart-vms": 2})
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    await worker.poll([task["taskId"]], {"tart-vms": 0})

    [listed] = (await controller.api("GET", "/api/v1/workers")).json()

    assert listed["name"] == "w1"
    assert listed["labels"]["team"] == "ios"
    assert listed["resourcesTotal"] == {"tart-vms": 2}
    assert listed["runningTasks"] == [task["taskId"]]
    assert listed["online"] is True
    assert listed["disabled"] is False
    assert listed["lastSeen"].endswith("Z")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("task:\n  b_script: x\n  b_background_script: y\n", 'duplicate command name "b"'),
        ("task:\n  script: x\n  timeout_in: [1]\n", "timeout_in"),
        ("a_task:\n  script: x\n  depends_on: [zz]\n", 'no task "zz"'),
        (
            "a_task:\n  script: x\n  depends_on: [b]\nb_task:\n  script: x\n  depends_on: [a]\n",
            "cycle",
        ),
        (
            "task:\n  persistent_worker:\n    isolation:\n      container:\n"
            "        image: x\n        memory: 4X\n  script: x\n",
            "memory",
        ),
    ],
    ids=["duplicate-command", "wrong-type", "unknown-dependency", "cycle", "bad-memory-unit"],
)
async def test_a_bad_config_is_refused_with_what_and_where(
    controller: RunningController, config: str, expected: str
) -> None:
    response = await controller.api("POST", "/api/v1/builds", {"config": config})

    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert 'task "' in response.json()["error"]


async def test_a_body_without_config_is_refused(controller: RunningController) -> None:
    missing = await controller.api("POST", "/api/v1/builds", {"environment": {}})
    not_json = await controller.http.post(
        "/api/v1/builds",
        content=b"[",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )

    assert missing.status_code == 400
    assert "config" in missing.json()["error"]
    assert not_json.status_code == 400


async def test_unknown_builds_tasks_and_commands_are_not_found(
    controller: RunningController,
) -> None:
    build = await controller.submit(ONE_TASK)
    task_id = build["tasks"][0]["id"]

    answers = [
        await controller.api("GET", "/api/v1/builds/999"),
        await controller.api("GET", "/api/v1/tasks/999"),
        await controller.api("GET", f"/api/v1/tasks/{task_id}/logs/nope"),
    ]
    empty_log = await controller.api("GET", f"/api/v1/tasks/{task_id}/logs/main")

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert empty_log.status_code == 200
    assert empty_log.content == b""


async def test_append_logs_data_is_decoded_from_base64(controller: RunningController) -> None:
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    raw = bytes(range(256))

    await worker.ok(
        CI,
        "AppendLogs",
        {"command_name": "main", "data": base64.b64encode(raw).decode()},
        worker.task_headers(task),
    )

    log = await controller.api("GET", f"/api/v1/tasks/{task['taskId']}/logs/main")
    assert log.content == raw


async def test_a_poll_whose_worker_went_away_hands_out_nothing(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    polling = asyncio.create_task(worker.poll())
    await controller.until_polls_held()

    polling.cancel()
    await wait_for(lambda: controller.runtime.waiters.waiting == 0)
    build = await controller.submit(ONE_TASK)

    task = await controller.task(build["tasks"][0]["id"])
    assert task["status"] == "SCHEDULED"
    assert task["worker"] is None


async def test_a_newer_poll_of_the_same_worker_answers_the_older_one(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    older = asyncio.create_task(worker.poll())
    await controller.until_polls_held()
    newer = asyncio.create_task(worker.poll())

    older_answer = await asyncio.wait_for(older, timeout=2)
    await controller.until_polls_held()
    await controller.submit(ONE_TASK)
    newer_answer = await newer

    assert older_answer.get("tasksToStart", []) == []
    assert len(newer_answer["tasksToStart"]) == 1


async def test_releasing_polls_answers_held_ones_at_once(controller: RunningController) -> None:
    worker = controller.worker("w1")
    await worker.register()
    polling = asyncio.create_task(worker.poll())
    await controller.until_polls_held()

    controller.runtime.release_polls()
    answer = await asyncio.wait_for(polling, timeout=2)

    assert answer.get("tasksToStart", []) == []


async def test_a_task_its_worker_stops_reporting_is_failed(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)

    await worker.poll([task["taskId"]])
    still_running = await controller.task(task["taskId"])
    await worker.poll([])  # restarted: it knows nothing of the task
    once_missing = await controller.task(task["taskId"])
    await worker.poll([])

    assert still_running["status"] == "EXECUTING"
    assert once_missing["status"] == "EXECUTING"
    failed = await controller.task(task["taskId"])
    assert failed["status"] == "FAILED"
    assert "worker w1 was lost" in failed["failureMessage"]


WORKER_BUILD = """
env:
  GREETING: hello
main_task:
  greet_script: echo "$GREETING from $CIRRUS_TASK_NAME"
after_task:
  depends_on: main
  script: exit 3
"""


async def test_the_real_worker_runs_a_build_against_the_controller(
    start_controller: ControllerFactory, tmp_path: Path
) -> None:
    controller = await start_controller(poll_interval=1)
    config = tmp_path / "worker.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "real-worker",
                "token": REGISTRATION_TOKEN,
                "rpc": {"endpoint": controller.url},
                "log": {"file": str(tmp_path / "worker.log")},
            }
        )
    )
    build = await controller.submit(WORKER_BUILD)
    process = await asyncio.create_subprocess_exec(
        str(CIRRUS),
        "worker",
        "run",
        "-f",
        str(config),
        cwd=tmp_path,
        env={**os.environ, "OTEL_SDK_DISABLED": "true"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        current = build
        while current["status"] == "EXECUTING":
            assert time.monotonic() < deadline, current
            assert process.returncode is None, "the worker exited"
            await asyncio.sleep(0.1)
            current = await controller.build(build["id"])
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()

    main_id, after_id = (t["id"] for t in build["tasks"])
    log = await controller.api("GET", f"/api/v1/tasks/{main_id}/logs/greet")
    after = await controller.task(after_id)
    assert [t["status"] for t in current["tasks"]] == ["COMPLETED", "FAILED"]
    assert current["status"] == "FAILED"
    assert log.content == b"hello from main\n"
    assert [(c["name"], c["status"]) for c in after["commands"]] == [
        ("clone", "COMPLETED"),
        ("main", "FAILED"),
    ]


async def test_a_task_its_worker_just_stopped_is_not_stopped_again(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)
    worker = controller.worker("w1")
    await worker.register()
    await controller.submit(ONE_TASK)
    [task] = (await worker.poll())["tasksToStart"]
    await worker.run(task)

    answer = await worker.poll([task["taskId"]])  # built before TaskStopped was delivered

    assert answer.get("tasksToStop", []) == []
