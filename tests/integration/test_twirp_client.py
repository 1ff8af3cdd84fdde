"""The Twirp controller client against a real HTTP server on 127.0.0.1 that records every call."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.twirp.client import TwirpControllerClient
from domain.errors import (
    DefiniteControllerError,
    SessionLostError,
    TransientControllerError,
)
from domain.isolation import TartIsolation
from domain.ports import ControllerClient
from domain.protocol import (
    ArtifactFileInfo,
    ArtifactsCommit,
    CacheInfo,
    CommandResult,
    CommandStatus,
    PollRequest,
    RunningTasksStatus,
    ScriptInstruction,
    TaskRef,
    WorkerInfo,
    frozen_float_map,
    frozen_str_map,
)
from tests.integration.asgi_server import serve_asgi
from tests.integration.fake_controller import FakeController, FakeTask, script

pytestmark = pytest.mark.integration

PREFIX = "/twirp/org.cirruslabs.ci.services.cirruscigrpc."
REGISTRATION_TOKEN = "registration-token-value-1234"
SESSION_TOKEN = "session-token-value-5678"
CLIENT_SECRET = "client-secret-value-9012"
WORKER_NAME = "worker-1"
AUTH_HEADERS = ("registration-token", "session-token", "worker-name")
TASK_HEADERS = ("org.cirruslabs.task-id", "org.cirruslabs.client-secret")
WORKER_INFO = WorkerInfo(
    labels=frozen_str_map({"name": WORKER_NAME, "os": "linux"}),
    resources_total=frozen_float_map({"tart-vms": 2}),
)


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    """A scripted answer: status, raw body, and how long to hold it (or until released)."""

    status: int = 200
    body: bytes = b"{}"
    delay: float = 0.0
    hold: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ScriptedController:
    """Answers each method from a queue of scripted answers (default ``200 {}``)."""

    requests: list[Recorded] = field(default_factory=list)
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, method: str, *answers: Answer) -> None:
        """Queue answers for a method (its last path segment)."""
        self.answers.setdefault(method, []).extend(answers)

    def reply(self, method: str, body: object, status: int = 200) -> None:
        """Queue one JSON answer."""
        self.script(method, Answer(status, json.dumps(body).encode()))

    async def handle(self, request: Request) -> Response:
        """Record the request, then play the next scripted answer."""
        raw = await request.body()
        self.requests.append(Recorded(request.url.path, dict(request.headers), json.loads(raw)))
        queue = self.answers.get(request.url.path.rsplit("/", 1)[-1], [])
        answer = queue.pop(0) if queue else Answer()
        if answer.hold:
            await self.release.wait()
        elif answer.delay:
            await asyncio.sleep(answer.delay)  # the scripted server is slow on purpose
        return Response(
            answer.body, answer.status, headers=answer.headers, media_type="application/json"
        )


@pytest.fixture
async def server() -> AsyncIterator[tuple[ScriptedController, str]]:
    """A scripted controller served by uvicorn on 127.0.0.1, port chosen by the kernel."""
    controller = ScriptedController()
    app = Starlette(routes=[Route("/{path:path}", controller.handle, methods=["POST"])])
    async with serve_asgi(app) as url:
        try:
            yield controller, url
        finally:
            controller.release.set()


@pytest.fixture
async def client(server: tuple[ScriptedController, str]) -> AsyncIterator[TwirpControllerClient]:
    """A client of the scripted controller with a short default call timeout."""
    _, endpoint = server
    twirp = TwirpControllerClient(endpoint + "/", REGISTRATION_TOKEN, WORKER_NAME, call_timeout=5)
    try:
        yield twirp
    finally:
        await twirp.aclose()


def controller_of(server: tuple[ScriptedController, str]) -> ScriptedController:
    return server[0]


async def registered(
    client: TwirpControllerClient, controller: ScriptedController
) -> TwirpControllerClient:
    controller.reply("Register", {"sessionToken": SESSION_TOKEN})
    await client.register(WORKER_INFO)
    return client


def test_the_client_is_a_controller_client(client: TwirpControllerClient) -> None:
    port: ControllerClient = client  # mypy checks the structural match
    assert port.endpoint.startswith("http://127.0.0.1:")
    assert not port.endpoint.endswith("/")


async def test_register_sends_the_token_in_the_body_and_no_auth_headers(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    assert client.session_token == ""
    controller.reply("Register", {"sessionToken": SESSION_TOKEN})

    assert await client.register(WORKER_INFO) == SESSION_TOKEN

    assert client.session_token == SESSION_TOKEN
    [call] = controller.requests
    assert call.path == PREFIX + "CirrusWorkersService/Register"
    assert call.headers["content-type"] == "application/json"
    assert not set(AUTH_HEADERS + TASK_HEADERS) & set(call.headers)
    assert call.body == {
        "registrationToken": REGISTRATION_TOKEN,
        "workerInfo": {
            "labels": {"name": WORKER_NAME, "os": "linux"},
            "resourcesTotal": {"tart-vms": 2.0},
        },
    }


async def test_worker_calls_before_registering_carry_an_empty_session_token(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    controller.reply("UpdateStatus", {"disabled": True})

    assert await client.update_status(True) is True

    [call] = controller.requests
    assert call.path == PREFIX + "CirrusWorkersService/UpdateStatus"
    assert call.body == {"disabled": True}
    assert {h: call.headers[h] for h in AUTH_HEADERS} == {
        "registration-token": REGISTRATION_TOKEN,
        "session-token": "",
        "worker-name": WORKER_NAME,
    }
    assert not set(TASK_HEADERS) & set(call.headers)


async def test_poll_sends_worker_headers_and_a_camel_case_body_and_reads_the_answer(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    await registered(client, controller)
    controller.reply(
        "Poll",
        {
            "tasksToStart": [
                {"taskId": "t-1", "clientSecret": "cs", "isolation": {"tart": {"image": "i"}}}
            ],
            "pollIntervalInSeconds": 30,
            "oldTaskIdsToStop": ["9"],
        },
    )
    request = PollRequest(
        worker_info=WORKER_INFO,
        resources_in_use=frozen_float_map({"tart-vms": 1}),
        running_tasks=("12", "t-0"),
    )

    response = await client.poll(request, timeout_seconds=5)

    assert response.tasks_to_start[0].task_id == "t-1"
    assert response.tasks_to_start[0].isolation == TartIsolation(image="i")
    assert response.poll_interval_in_seconds == 30
    assert response.tasks_to_stop == ("9",)
    call = controller.requests[-1]
    assert call.path == PREFIX + "CirrusWorkersService/Poll"
    assert {h: call.headers[h] for h in AUTH_HEADERS} == {
        "registration-token": REGISTRATION_TOKEN,
        "session-token": SESSION_TOKEN,
        "worker-name": WORKER_NAME,
    }
    assert not set(TASK_HEADERS) & set(call.headers)
    assert call.body == {
        "workerInfo": {
            "labels": {"name": WORKER_NAME, "os": "linux"},
            "resourcesTotal": {"tart-vms": 2.0},
        },
        "oldRunningTasks": ["12"],
        "resourcesInUse": {"tart-vms": 1.0},
        "runningTasks": ["12", "t-0"],
    }


@pytest.mark.parametrize(
    ("task_id", "identification"),
    [("42", {"taskId": "42", "secret": CLIENT_SECRET}), ("t-42", {"secret": CLIENT_SECRET})],
)
async def test_task_lifecycle_calls_carry_task_headers_and_the_task_identification(
    server: tuple[ScriptedController, str],
    client: TwirpControllerClient,
    task_id: str,
    identification: dict[str, str],
) -> None:
    controller = controller_of(server)
    await registered(client, controller)
    task = TaskRef(task_id, CLIENT_SECRET)

    await client.task_started(task)
    await client.task_failed(task, "instance creation failed")
    await client.task_stopped(task)

    calls = controller.requests[1:]
    assert [c.path.rsplit("/", 1)[-1] for c in calls] == [
        "TaskStarted",
        "TaskFailed",
        "TaskStopped",
    ]
    assert all(c.path.startswith(PREFIX + "CirrusWorkersService/") for c in calls)
    for call in calls:
        assert {h: call.headers[h] for h in AUTH_HEADERS + TASK_HEADERS} == {
            "registration-token": REGISTRATION_TOKEN,
            "session-token": SESSION_TOKEN,
            "worker-name": WORKER_NAME,
            "org.cirruslabs.task-id": task_id,
            "org.cirruslabs.client-secret": CLIENT_SECRET,
        }
    assert calls[0].body == identification
    assert calls[1].body == {
        "taskIdentification": identification,
        "message": "instance creation failed",
    }
    assert calls[2].body == identification


async def test_task_execution_calls_use_the_ci_service_with_task_headers(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    await registered(client, controller)
    task = TaskRef("t-7", CLIENT_SECRET)
    controller.reply(
        "InitialCommands",
        {
            "environment": {"A": "1"},
            "commands": [{"name": "main", "scriptInstruction": {"scripts": ["echo hi"]}}],
            "timeoutInSeconds": "600",
            "secretsToMask": ["s3"],
        },
    )
    controller.reply("AppendLogs", {"bytesLogged": "4"})
    results = [CommandResult("main", CommandStatus.COMPLETED, duration_in_nanos=1_000_000_000)]

    commands = await client.initial_commands(task, local_timestamp=1_700_000_000)
    await client.report_command_updates(task, [CommandResult("main", CommandStatus.EXECUTING)])
    logged = await client.append_logs(task, "main", b"hi\n\xff")
    await client.heartbeat(task)
    await client.report_agent_finished(task, results)

    assert commands.commands[0].instruction == ScriptInstruction(("echo hi",))
    assert commands.timeout_in_seconds == 600
    assert dict(commands.environment) == {"A": "1"}
    assert commands.secrets_to_mask == ("s3",)
    assert logged == 4
    calls = controller.requests[1:]
    assert [c.path for c in calls] == [
        PREFIX + "CirrusCIService/" + method
        for method in (
            "InitialCommands",
            "ReportCommandUpdates",
            "AppendLogs",
            "Heartbeat",
            "ReportAgentFinished",
        )
    ]
    for call in calls:
        assert call.headers["org.cirruslabs.task-id"] == "t-7"
        assert call.headers["org.cirruslabs.client-secret"] == CLIENT_SECRET
        assert call.headers["session-token"] == SESSION_TOKEN
        assert call.headers["content-type"] == "application/json"
    assert [c.body for c in calls] == [
        {"localTimestamp": "1700000000"},
        {"updates": [{"name": "main", "status": "EXECUTING"}]},
        {"commandName": "main", "data": "aGkK/w=="},
        {},
        {
            "commandResults": [
                {"name": "main", "status": "COMPLETED", "durationInNanos": "1000000000"}
            ]
        },
    ]


async def test_query_running_tasks_reads_status_and_tasks(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    controller.reply("QueryRunningTasks", {"status": {"disabled": True}, "runningTasks": ["a"]})

    assert await client.query_running_tasks() == RunningTasksStatus(True, ("a",))

    [call] = controller.requests
    assert call.path == PREFIX + "CirrusWorkersService/QueryRunningTasks"
    assert call.body == {}


def twirp_error(code: str, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}).encode()


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (Answer(503, twirp_error("unavailable", "down")), TransientControllerError, "unavailable"),
        (Answer(500, b"<html>oops</html>"), TransientControllerError, "internal"),
        (Answer(502, b""), TransientControllerError, "unavailable"),
        (Answer(429, twirp_error("resource_exhausted", "slow down")), TransientControllerError,
         "resource_exhausted"),
        (Answer(429, b"too many"), TransientControllerError, "resource_exhausted"),
        (Answer(401, twirp_error("unauthenticated", "who?")), SessionLostError, "unauthenticated"),
        (Answer(403, twirp_error("permission_denied", "no")), DefiniteControllerError,
         "permission_denied"),
        (Answer(400, twirp_error("invalid_argument", "bad")), DefiniteControllerError,
         "invalid_argument"),
        (Answer(404, b"not found"), DefiniteControllerError, "not_found"),
        (Answer(501, twirp_error("unimplemented", "no blobs")), DefiniteControllerError,
         "unimplemented"),
        (Answer(200, b"not json"), DefiniteControllerError, "malformed_response"),
        (Answer(200, b'{"pollIntervalInSeconds": "soon"}'), DefiniteControllerError,
         "malformed_response"),
        (Answer(302, b""), DefiniteControllerError, "malformed_response"),
    ],
)  # fmt: skip
async def test_failed_calls_are_translated_by_status_and_twirp_code(
    server: tuple[ScriptedController, str],
    client: TwirpControllerClient,
    answer: Answer,
    error: type[Exception],
    code: str,
) -> None:
    controller_of(server).script("Poll", answer)

    with pytest.raises(error) as caught:
        await client.poll(PollRequest(WORKER_INFO), timeout_seconds=5)

    assert type(caught.value) is error
    assert getattr(caught.value, "code", None) == code
    assert "Poll" in str(caught.value)


async def test_tokens_and_secrets_never_appear_in_error_messages(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    await registered(client, controller)
    echo = f"bad {REGISTRATION_TOKEN} {SESSION_TOKEN} {CLIENT_SECRET}"
    controller.script("Heartbeat", Answer(403, twirp_error("permission_denied", echo)))
    controller.script("TaskStopped", Answer(503, twirp_error("unavailable", echo)))

    errors: list[Exception] = []
    for call in (client.heartbeat, client.task_stopped):
        with pytest.raises((DefiniteControllerError, TransientControllerError)) as caught:
            await call(TaskRef("1", CLIENT_SECRET))
        errors.append(caught.value)

    for error in errors:
        text = f"{error} {error!r}"
        assert "bad" in text
        for secret in (REGISTRATION_TOKEN, SESSION_TOKEN, CLIENT_SECRET):
            assert secret not in text


async def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    twirp = TwirpControllerClient(f"http://127.0.0.1:{port}", REGISTRATION_TOKEN, WORKER_NAME)
    try:
        with pytest.raises(TransientControllerError) as caught:
            await twirp.register(WORKER_INFO)
    finally:
        await twirp.aclose()
    assert caught.value.code == "unavailable"
    assert REGISTRATION_TOKEN not in str(caught.value)


async def test_a_proxy_from_the_environment_carries_plain_http_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx's client reads the proxy settings of the environment.
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        seen.append(head.split(b"\r\n", 1)[0])
        body = json.dumps({"sessionToken": "from-the-proxy"}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # The controller's address is never reached directly: only the proxy answers.
    twirp = TwirpControllerClient("http://controller.invalid:8080", REGISTRATION_TOKEN, WORKER_NAME)
    try:
        await twirp.register(WORKER_INFO)
    finally:
        await twirp.aclose()
        server.close()
        await server.wait_closed()
    assert twirp.session_token == "from-the-proxy"
    assert seen == [
        b"POST http://controller.invalid:8080/twirp/"
        b"org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/Register HTTP/1.1"
    ]


async def test_a_server_slower_than_the_call_timeout_is_transient(
    server: tuple[ScriptedController, str],
) -> None:
    controller, endpoint = server
    controller.script("Heartbeat", Answer(hold=True))
    twirp = TwirpControllerClient(endpoint, REGISTRATION_TOKEN, WORKER_NAME, call_timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(TransientControllerError) as caught:
            await twirp.heartbeat(TaskRef("1", CLIENT_SECRET))
    finally:
        await twirp.aclose()
    assert caught.value.code == "deadline_exceeded"
    assert 0.25 <= time.monotonic() - started < 3


async def test_a_long_poll_may_take_longer_than_the_call_timeout(
    server: tuple[ScriptedController, str],
) -> None:
    controller, endpoint = server
    controller.script("Poll", Answer(200, b'{"shutdown": true}', delay=0.8))
    twirp = TwirpControllerClient(endpoint, REGISTRATION_TOKEN, WORKER_NAME, call_timeout=0.2)
    started = time.monotonic()
    try:
        response = await twirp.poll(PollRequest(WORKER_INFO), timeout_seconds=5)
    finally:
        await twirp.aclose()
    assert response.shutdown is True
    assert time.monotonic() - started >= 0.75


async def test_a_long_poll_gives_up_at_its_own_timeout(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller_of(server).script("Poll", Answer(hold=True))
    started = time.monotonic()

    with pytest.raises(TransientControllerError) as caught:
        await client.poll(PollRequest(WORKER_INFO), timeout_seconds=0.4)

    assert caught.value.code == "deadline_exceeded"
    assert 0.35 <= time.monotonic() - started < 3


async def test_a_given_http_client_is_used_and_left_open(
    server: tuple[ScriptedController, str],
) -> None:
    controller, endpoint = server
    async with httpx.AsyncClient() as http:
        twirp = TwirpControllerClient(endpoint, REGISTRATION_TOKEN, WORKER_NAME, http_client=http)
        await twirp.heartbeat(TaskRef("1", CLIENT_SECRET))
        await twirp.aclose()
        assert not http.is_closed
    assert controller.requests[0].path == PREFIX + "CirrusCIService/Heartbeat"


def padded_status(size: int) -> bytes:
    """A valid ``WorkerStatus`` JSON answer of exactly ``size`` bytes."""
    head, tail = b'{"disabled": true, "padding": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("transport", ["its own client", "a given client"])
async def test_an_answer_beyond_the_size_cap_is_malformed_and_one_within_it_is_read(
    server: tuple[ScriptedController, str], transport: str
) -> None:
    controller, endpoint = server
    cap = 4096
    controller.script(
        "UpdateStatus",
        Answer(body=padded_status(cap)),
        Answer(body=padded_status(cap + 1)),
        # Small on the wire, beyond the cap once decoded.
        Answer(body=gzip.compress(padded_status(20 * cap)), headers={"Content-Encoding": "gzip"}),
    )
    async with httpx.AsyncClient() as http:
        twirp = TwirpControllerClient(
            endpoint,
            REGISTRATION_TOKEN,
            WORKER_NAME,
            http_client=http if transport == "a given client" else None,
            max_answer_bytes=cap,
        )
        try:
            assert await twirp.update_status(True) is True
            for _ in range(2):
                with pytest.raises(DefiniteControllerError) as refused:
                    await twirp.update_status(True)
                assert refused.value.code == "malformed_response"
                assert f"exceeds {cap} bytes" in str(refused.value)
        finally:
            await twirp.aclose()


async def test_a_task_id_that_cannot_be_a_header_is_a_definite_error_without_a_call(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    with pytest.raises(DefiniteControllerError, match=r"org\.cirruslabs\.task-id") as caught:
        await client.heartbeat(TaskRef("tâche-1", CLIENT_SECRET))
    assert caught.value.code == "invalid_argument"
    assert controller_of(server).requests == []


async def test_a_whole_task_against_an_independently_written_controller(
    fake_controller: FakeController,
) -> None:
    task = fake_controller.queue_task(
        FakeTask(task_id="t-100", commands=[script("main", "echo hi")], secrets_to_mask=["s"])
    )
    twirp = TwirpControllerClient(
        fake_controller.url, fake_controller.registration_token, WORKER_NAME
    )
    try:
        await twirp.register(WORKER_INFO)
        poll = await twirp.poll(PollRequest(WORKER_INFO), timeout_seconds=5)
        [started] = poll.tasks_to_start
        ref = TaskRef(started.task_id, started.client_secret)
        await twirp.task_started(ref)
        commands = await twirp.initial_commands(ref, local_timestamp=1)
        await twirp.report_command_updates(ref, [CommandResult("main", CommandStatus.EXECUTING)])
        assert await twirp.append_logs(ref, "main", b"hi\n") == 3
        await twirp.heartbeat(ref)
        await twirp.report_agent_finished(ref, [CommandResult("main", CommandStatus.COMPLETED)])
        await twirp.task_stopped(ref)
    finally:
        await twirp.aclose()

    assert fake_controller.violations == []
    assert started.task_id == "t-100"
    assert started.client_secret == task.client_secret
    assert commands.commands[0].instruction == ScriptInstruction(("echo hi",))
    assert commands.secrets_to_mask == ("s",)
    seen = fake_controller.task("t-100")
    assert (seen.started, seen.stopped, seen.heartbeats) == (1, 1, 1)
    assert seen.log_text("main") == "hi\n"
    assert seen.final_statuses() == {"main": "COMPLETED"}


async def test_the_cache_and_artifact_calls_send_the_proto_json_and_read_the_answers(
    server: tuple[ScriptedController, str], client: TwirpControllerClient
) -> None:
    controller = controller_of(server)
    await registered(client, controller)
    task = TaskRef("t-8", CLIENT_SECRET)
    info = {"key": "pip-1", "sizeInBytes": "10", "creationTimestamp": "5", "createdByTaskId": "3"}
    controller.reply("CacheInfo", {"info": info})
    controller.script("CacheInfo", Answer(404, twirp_error("not_found", "no cache")))
    controller.reply("GenerateCacheDownloadURLs", {"urls": ["/blobs/a?sig=1"]})
    controller.reply("GenerateCacheUploadURL", {"url": "https://s3/x", "extraHeaders": {"h": "v"}})
    controller.reply("GenerateArtifactUploadURLs", {"urls": [{"url": "/blobs/f", "headers": {}}]})
    files = [ArtifactFileInfo("out/a.xml", 12)]

    found = await client.cache_info(task, "pip-1")
    missing = await client.cache_info(task, "", ["pip-"])
    downloads = await client.cache_download_urls(task, "pip-1")
    upload = await client.cache_upload_url(task, "pip-1")
    artifact_urls = await client.artifact_upload_urls(task, "junit", files)
    await client.commit_artifacts(task, ArtifactsCommit("junit", "text/xml", "junit", tuple(files)))

    assert found == CacheInfo("pip-1", 10, 5, "3")
    assert missing is None
    assert downloads == ("/blobs/a?sig=1",)
    assert (upload.url, dict(upload.headers)) == ("https://s3/x", {"h": "v"})
    assert [u.url for u in artifact_urls] == ["/blobs/f"]
    bodies = {r.path.rsplit("/", 1)[-1]: r.body for r in controller.requests}
    assert bodies["GenerateArtifactUploadURLs"] == {
        "name": "junit",
        "files": [{"path": "out/a.xml", "sizeInBytes": "12"}],
    }
    assert bodies["CommitUploadedArtifacts"]["format"] == "junit"
    assert all(r.headers["org.cirruslabs.task-id"] == "t-8" for r in controller.requests[1:])
