"""``TwirpServices`` on the in-memory store: a worker registers and appends a task's log through
the Twirp endpoint, with the server's codec reading and writing the JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.requests import Request
from starlette.types import Message

from adapters.twirp.codec import TwirpJsonCodec, method_path
from app.controller.auth import (
    CLIENT_SECRET_HEADER,
    REGISTRATION_TOKEN_HEADER,
    SESSION_TOKEN_HEADER,
    TASK_ID_HEADER,
    WORKER_NAME_HEADER,
    TokenHash,
    WorkerAuthenticator,
)
from app.controller.long_poll import PollWaiters
from app.controller.scheduler_service import SchedulerService
from app.controller.task_logs import TaskLogWriter
from app.controller.twirp_services import TwirpServices
from domain.store import TaskRecord, hash_token
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock
from tests.unit.controller.steps import submit

REGISTRATION = "registration secret"


def _services(store: FakeStore, scheduler: SchedulerService, clock: FakeClock) -> TwirpServices:
    auth = WorkerAuthenticator(store, TokenHash.of(REGISTRATION))
    return TwirpServices(
        store,
        scheduler,
        PollWaiters(),
        auth,
        clock,
        codec=TwirpJsonCodec(),
        logs=TaskLogWriter(store),
        poll_interval_seconds=1,
    )


async def _call(
    services: TwirpServices, method: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, Any]:
    """POST one Twirp call of ``CirrusWorkersService``/``CirrusCIService`` to the endpoint."""
    service = "CirrusWorkersService" if method == "Register" else "CirrusCIService"
    messages = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent = {"content-type": "application/json", **headers}
    scope = {
        "type": "http",
        "method": "POST",
        "path": method_path(service, method),
        "query_string": b"",
        "headers": [(key.encode(), value.encode()) for key, value in sent.items()],
    }
    response = await services.handle(Request(scope, receive))
    return response.status_code, json.loads(bytes(response.body))


async def _register(services: TwirpServices) -> str:
    body = {
        "registrationToken": REGISTRATION,
        "workerInfo": {"labels": {"name": "w1", "os": "linux"}, "resourcesTotal": {"cpu": 4}},
    }
    status, answer = await _call(services, "Register", body, {})
    assert status == 200
    return str(answer["sessionToken"])


async def _claimed(store: FakeStore, scheduler: SchedulerService) -> TaskRecord:
    await submit(store)
    [task] = await scheduler.claim_for("w1")
    return task


def _task_headers(session: str, task: TaskRecord) -> dict[str, str]:
    return {
        REGISTRATION_TOKEN_HEADER: REGISTRATION,
        WORKER_NAME_HEADER: "w1",
        SESSION_TOKEN_HEADER: session,
        TASK_ID_HEADER: task.id,
        CLIENT_SECRET_HEADER: task.client_secret,
    }


def _data(text: bytes) -> str:
    return base64.b64encode(text).decode()


async def test_a_worker_registers_with_its_labels_and_resources_and_gets_a_session_token(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    services = _services(store, scheduler, clock)
    session = await _register(services)
    worker = await store.get_worker("w1")
    assert session
    assert worker is not None
    assert (dict(worker.labels), dict(worker.resources_total)) == (
        {"name": "w1", "os": "linux"},
        {"cpu": 4.0},
    )
    assert await store.worker_session_hash("w1") == hash_token(session)


async def test_a_registration_with_the_wrong_token_is_refused_and_stores_no_worker(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    services = _services(store, scheduler, clock)
    body = {"registrationToken": "guess", "workerInfo": {"labels": {"name": "w1"}}}
    status, answer = await _call(services, "Register", body, {})
    assert (status, answer["code"]) == (401, "unauthenticated")
    assert await store.get_worker("w1") is None


async def test_appended_logs_are_kept_once_and_answer_what_the_log_holds(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    services = _services(store, scheduler, clock)
    headers = _task_headers(await _register(services), await _claimed(store, scheduler))
    task_id = headers[TASK_ID_HEADER]
    chunk = {"commandName": "main", "data": _data(b"hello "), "offset": "0"}
    assert await _call(services, "AppendLogs", chunk, headers) == (200, {"bytesLogged": "6"})
    assert await _call(services, "AppendLogs", chunk, headers) == (200, {"bytesLogged": "6"})
    plain = {"commandName": "main", "data": _data(b"world")}
    assert await _call(services, "AppendLogs", plain, headers) == (200, {"bytesLogged": "5"})
    assert await store.read_log(task_id, "main") == b"hello world"


async def test_an_append_without_a_command_name_is_refused(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    services = _services(store, scheduler, clock)
    headers = _task_headers(await _register(services), await _claimed(store, scheduler))
    status, answer = await _call(services, "AppendLogs", {"data": _data(b"x")}, headers)
    assert (status, answer["code"]) == (400, "invalid_argument")
    assert await store.read_log(headers[TASK_ID_HEADER], "") == b""
