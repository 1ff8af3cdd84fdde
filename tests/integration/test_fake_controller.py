"""The fake controller itself speaks the wire contract (so worker tests can trust it)."""

from __future__ import annotations

import base64
import threading
import time

import httpx
import pytest

from tests.integration.fake_controller import FakeController, FakeTask, script

pytestmark = pytest.mark.integration

WORKERS = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/"
CI = "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusCIService/"


def register(client: httpx.Client, fake: FakeController, name: str = "w1") -> dict[str, str]:
    body = {"registrationToken": fake.registration_token, "workerInfo": {"labels": {"name": name}}}
    answer = client.post(WORKERS + "Register", json=body)
    assert answer.status_code == 200
    return {
        "registration-token": fake.registration_token,
        "session-token": answer.json()["sessionToken"],
        "worker-name": name,
    }


def test_a_wrong_registration_token_is_answered_unauthenticated(
    fake_controller: FakeController,
) -> None:
    with httpx.Client(base_url=fake_controller.url) as client:
        answer = client.post(WORKERS + "Register", json={"registrationToken": "nope"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"


def test_a_poll_without_a_session_is_refused_and_noted(fake_controller: FakeController) -> None:
    with httpx.Client(base_url=fake_controller.url) as client:
        answer = client.post(WORKERS + "Poll", json={}, headers={"worker-name": "w1"})
    assert answer.status_code == 401
    assert fake_controller.auth_failures


def test_a_task_goes_out_in_a_poll_and_its_reports_are_recorded(
    fake_controller: FakeController,
) -> None:
    task = fake_controller.queue_task(
        FakeTask("t1", [script("main", "echo hi")], environment={"A": "1"}, timeout_in_seconds=9)
    )
    with httpx.Client(base_url=fake_controller.url) as client:
        auth = register(client, fake_controller)
        poll = client.post(WORKERS + "Poll", json={"workerInfo": {}}, headers=auth).json()
        assert poll["tasksToStart"][0]["taskId"] == "t1"
        assert poll["tasksToStart"][0]["isolation"] == {"none": {}}
        scoped = auth | {
            "org.cirruslabs.task-id": "t1",
            "org.cirruslabs.client-secret": task.client_secret,
        }
        assert client.post(WORKERS + "TaskStarted", json={}, headers=scoped).status_code == 200
        commands = client.post(CI + "InitialCommands", json={}, headers=scoped).json()
        assert commands["timeoutInSeconds"] == "9"
        assert commands["environment"] == {"A": "1"}
        data = base64.b64encode(b"hello").decode()
        logged = client.post(
            CI + "AppendLogs", json={"commandName": "main", "data": data}, headers=scoped
        )
        assert logged.json() == {"bytesLogged": "5"}
        results = {"commandResults": [{"name": "main", "status": 6}]}
        client.post(CI + "ReportAgentFinished", json=results, headers=scoped)
        client.post(WORKERS + "TaskStopped", json={}, headers=scoped)
        wrong = auth | {"org.cirruslabs.task-id": "t1", "org.cirruslabs.client-secret": "x"}
        assert client.post(CI + "Heartbeat", json={}, headers=wrong).status_code == 403

    seen = fake_controller.task("t1")
    assert seen.started == 1
    assert seen.stopped == 1
    assert seen.log_text("main") == "hello"
    assert seen.final_statuses() == {"main": "COMPLETED"}
    assert fake_controller.violations == []


def test_snake_case_fields_are_noted_as_violations(fake_controller: FakeController) -> None:
    with httpx.Client(base_url=fake_controller.url) as client:
        auth = register(client, fake_controller)
        client.post(WORKERS + "Poll", json={"worker_info": {}}, headers=auth)
    assert any("worker_info" in v for v in fake_controller.violations)


def test_an_idle_poll_is_held_and_answered_as_soon_as_work_arrives(
    fake_controller: FakeController,
) -> None:
    fake_controller.set_poll_interval(5, hold_poll_seconds=5.0)
    with httpx.Client(base_url=fake_controller.url, timeout=10) as client:
        auth = register(client, fake_controller)
        timer = threading.Timer(0.3, fake_controller.queue_task, [FakeTask("t2", [])])
        timer.start()
        begun = time.monotonic()
        poll = client.post(WORKERS + "Poll", json={"workerInfo": {}}, headers=auth).json()
        timer.join()
    assert poll["tasksToStart"][0]["taskId"] == "t2"
    assert time.monotonic() - begun < 3


def test_an_outage_answers_503_to_everything(fake_controller: FakeController) -> None:
    with fake_controller.outage(), httpx.Client(base_url=fake_controller.url) as client:
        answer = client.post(WORKERS + "Register", json={})
    assert answer.status_code == 503
    assert answer.json()["code"] == "unavailable"
