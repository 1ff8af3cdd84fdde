"""A real controller for the tests: ``create_app`` on uvicorn at 127.0.0.1:0, SQLite in tmp_path.

Clients speak raw HTTP and hand-written JSON, as a worker or a user would, without the
project's codec, so that the tests check the wire format and not the codec against itself.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from adapters.storage.sqlite_store import SqliteStore
from app.controller.server import ControllerRuntime, create_app
from domain.store import ControllerStore
from tests.integration.asgi_server import serve_asgi

REGISTRATION_TOKEN = "registration-token-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"
PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc"
WORKERS = "CirrusWorkersService"
CI = "CirrusCIService"

Json = dict[str, Any]


class ShiftableClock:
    """The system clock, with wall time that a test can move forward (monotonic stays real)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, plus the offset."""
        return time.time() + self.offset

    def monotonic(self) -> float:
        """Real monotonic seconds (long polls must really wait)."""
        return time.monotonic()

    def advance(self, seconds: float) -> None:
        """Move wall time forward."""
        self.offset += seconds


@dataclass
class WorkerClient:
    """One fake worker speaking Twirp JSON to the controller."""

    http: httpx.AsyncClient
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, float] = field(default_factory=dict)
    session_token: str = ""

    def info(self) -> Json:
        """The ``WorkerInfo`` this worker declares."""
        labels = {"name": self.name, "os": "linux", "arch": "amd64", **self.labels}
        return {"labels": labels, "resourcesTotal": dict(self.resources)}

    def headers(self) -> dict[str, str]:
        """Headers of every worker call after registration."""
        return {
            "registration-token": REGISTRATION_TOKEN,
            "session-token": self.session_token,
            "worker-name": self.name,
        }

    def task_headers(self, task: Json) -> dict[str, str]:
        """Headers of a task-scoped call."""
        return {
            **self.headers(),
            "org.cirruslabs.task-id": task["taskId"],
            "org.cirruslabs.client-secret": task["clientSecret"],
        }

    async def call(
        self, service: str, method: str, body: Json, headers: Mapping[str, str]
    ) -> httpx.Response:
        """POST one Twirp call and return the raw answer."""
        return await self.http.post(
            f"/twirp/{PACKAGE}.{service}/{method}",
            json=body,
            headers={"Content-Type": "application/json", **headers},
        )

    async def ok(self, service: str, method: str, body: Json, headers: Mapping[str, str]) -> Json:
        """Make a call that must succeed; return its JSON answer."""
        response = await self.call(service, method, body, headers)
        assert response.status_code == 200, response.text
        answer: Json = response.json()
        return answer

    async def register(self) -> None:
        """Register and keep the session token."""
        body = {"registrationToken": REGISTRATION_TOKEN, "workerInfo": self.info()}
        answer = await self.ok(WORKERS, "Register", body, {})
        self.session_token = answer["sessionToken"]

    async def poll(
        self, running: Sequence[str] = (), in_use: Mapping[str, float] | None = None
    ) -> Json:
        """Poll once (the controller may hold the call up to the poll interval)."""
        body: Json = {"workerInfo": self.info(), "runningTasks": list(running)}
        if in_use:
            body["resourcesInUse"] = dict(in_use)
        return await self.ok(WORKERS, "Poll", body, self.headers())

    async def started(self, task: Json) -> None:
        """Report ``TaskStarted``."""
        await self.ok(WORKERS, "TaskStarted", {}, self.task_headers(task))

    async def failed(self, task: Json, message: str) -> None:
        """Report ``TaskFailed``."""
        await self.ok(WORKERS, "TaskFailed", {"message": message}, self.task_headers(task))

    async def stopped(self, task: Json) -> None:
        """Report ``TaskStopped``."""
        await self.ok(WORKERS, "TaskStopped", {}, self.task_headers(task))

    async def initial_commands(self, task: Json) -> Json:
        """Fetch the task's commands."""
        body = {"localTimestamp": str(int(time.time()))}
        return await self.ok(CI, "InitialCommands", body, self.task_headers(task))

    async def report(self, task: Json, name: str, status: str, nanos: int = 0) -> None:
        """Report one command's status with ``ReportCommandUpdates``."""
        update = {"name": name, "status": status, "durationInNanos": str(nanos)}
        await self.ok(CI, "ReportCommandUpdates", {"updates": [update]}, self.task_headers(task))

    async def append_logs(self, task: Json, command: str, data: bytes) -> Json:
        """Append log bytes of a command."""
        body = {"commandName": command, "data": base64.b64encode(data).decode()}
        return await self.ok(CI, "AppendLogs", body, self.task_headers(task))

    async def finished(self, task: Json, results: Mapping[str, str]) -> None:
        """Report ``ReportAgentFinished`` with the final status of each command."""
        body = {"commandResults": [{"name": n, "status": s} for n, s in results.items()]}
        await self.ok(CI, "ReportAgentFinished", body, self.task_headers(task))

    async def run(self, task: Json, status: str = "COMPLETED", log: bytes = b"") -> None:
        """Run a task's whole lifecycle with every command ending ``status``."""
        await self.started(task)
        commands = (await self.initial_commands(task))["commands"]
        for command in commands:
            if log:
                await self.append_logs(task, command["name"], log)
            await self.report(task, command["name"], status, 1000)
        await self.finished(task, {c["name"]: status for c in commands})
        await self.stopped(task)


@dataclass
class RunningController:
    """A controller served on 127.0.0.1, its runtime, clock, and clients of it."""

    url: str
    runtime: ControllerRuntime
    clock: ShiftableClock
    http: httpx.AsyncClient
    poll_interval: int

    def worker(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> WorkerClient:
        """Return a (not yet registered) worker client."""
        return WorkerClient(self.http, name, dict(labels or {}), dict(resources or {}))

    async def api(
        self, method: str, path: str, body: Json | None = None, *, token: str | None = ADMIN_TOKEN
    ) -> httpx.Response:
        """Call the HTTP API (with the admin token unless ``token`` says otherwise)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await self.http.request(method, path, json=body, headers=headers)

    async def submit(self, config: str, environment: Mapping[str, str] | None = None) -> Json:
        """Submit a build that must be accepted; return its JSON."""
        response = await self.api(
            "POST", "/api/v1/builds", {"config": config, "environment": dict(environment or {})}
        )
        assert response.status_code == 201, response.text
        build: Json = response.json()
        return build

    async def task(self, task_id: str) -> Json:
        """Return ``GET /api/v1/tasks/{id}``."""
        response = await self.api("GET", f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        answer: Json = response.json()
        return answer

    async def build(self, build_id: str) -> Json:
        """Return ``GET /api/v1/builds/{id}``."""
        response = await self.api("GET", f"/api/v1/builds/{build_id}")
        assert response.status_code == 200, response.text
        answer: Json = response.json()
        return answer

    async def log(self, task_id: str, command: str = "main") -> bytes:
        """Return a command's log, ``GET /api/v1/tasks/{id}/logs/{command}``."""
        response = await self.api("GET", f"/api/v1/tasks/{task_id}/logs/{command}")
        assert response.status_code == 200, response.text
        return response.content

    async def running_task(self, config: str) -> tuple[WorkerClient, Json]:
        """Register worker ``w1``, submit ``config`` and start the one task the worker gets."""
        worker = self.worker("w1")
        await worker.register()
        await self.submit(config)
        [task] = (await worker.poll())["tasksToStart"]
        await worker.started(task)
        return worker, task

    async def until_polls_held(self, count: int = 1, deadline: float = 5.0) -> None:
        """Wait until ``count`` polls are held by the controller."""
        await wait_for(lambda: self.runtime.waiters.waiting >= count, deadline)


async def wait_for(condition: Callable[[], bool], deadline: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


ControllerFactory = Callable[..., Awaitable[RunningController]]


async def serve_controller(
    stack: AsyncExitStack, app: Starlette, clock: ShiftableClock, poll_interval: int
) -> RunningController:
    """Serve ``app`` with uvicorn on 127.0.0.1:0 until ``stack`` closes; return a client of it."""
    runtime: ControllerRuntime = app.state.controller
    url = await stack.enter_async_context(serve_asgi(app, lifespan="on"))
    # Registered after the server, so it runs first: held polls are answered before it stops.
    stack.callback(runtime.release_polls)
    http = httpx.AsyncClient(base_url=url, timeout=poll_interval + 10)
    stack.push_async_callback(http.aclose)
    return RunningController(url, runtime, clock, http, poll_interval)


async def serve_store(
    stack: AsyncExitStack,
    store: ControllerStore,
    clock: ShiftableClock,
    poll_interval: int = 5,
    **options: Any,
) -> RunningController:
    """Serve a controller on ``store`` with the tests' tokens until ``stack`` closes;
    ``options`` are further keyword arguments of ``create_app``."""
    app = create_app(
        store,
        registration_token=REGISTRATION_TOKEN,
        admin_token=ADMIN_TOKEN,
        poll_interval_seconds=poll_interval,
        clock=clock,
        **options,
    )
    return await serve_controller(stack, app, clock, poll_interval)


async def serve_on_sqlite(
    stack: AsyncExitStack,
    directory: Path,
    poll_interval: int = 5,
    *,
    clock: ShiftableClock | None = None,
    **options: Any,
) -> tuple[RunningController, SqliteStore]:
    """Serve a controller on a SQLite store ``directory/controller.db`` until ``stack`` closes;
    return it and the store (for tests that also write to it)."""
    clock = clock or ShiftableClock()
    store = await SqliteStore.open(directory / "controller.db", clock)
    stack.push_async_callback(store.aclose)
    return await serve_store(stack, store, clock, poll_interval, **options), store


@pytest.fixture
async def start_controller(tmp_path: Path) -> AsyncIterator[ControllerFactory]:
    """Start controllers (``poll_interval=...``) for the test; stop them all afterwards."""
    async with AsyncExitStack() as stack:

        async def start(poll_interval: int = 5) -> RunningController:
            controller, _store = await serve_on_sqlite(stack, tmp_path, poll_interval)
            return controller

        yield start


@pytest.fixture
async def controller(start_controller: ControllerFactory) -> RunningController:
    """A controller with a 5 s poll interval."""
    return await start_controller()
