"""A real Twirp JSON controller on 127.0.0.1, scripted by tests, that records every call.

It is written straight from ``spec/PROTOCOL.md`` with hand-built JSON dicts, independently of the
project's own codec, so that a codec bug cannot hide in both ends. It checks the authentication
headers of every call, notes any departure from the wire contract in ``violations`` and answers
with proto3 JSON the way another implementation might (64-bit integers as strings, enums by name,
default values left out).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from tests.integration.fake_blobs import METHODS as BLOB_METHODS
from tests.integration.fake_blobs import FakeBlobs

T = TypeVar("T")
Answer = tuple[int, dict[str, Any]]  # HTTP status and JSON body

PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc"
WORKERS = "CirrusWorkersService"
CI = "CirrusCIService"
WORKERS_METHODS = frozenset(
    {"Register", "Poll", "TaskStarted", "TaskFailed", "TaskStopped", "UpdateStatus"}
    | {"QueryRunningTasks"}
)
CI_METHODS = frozenset(
    {"InitialCommands", "ReportCommandUpdates", "AppendLogs", "Heartbeat", "ReportAgentFinished"}
    | BLOB_METHODS
)
TASK_SCOPED = frozenset({"TaskStarted", "TaskFailed", "TaskStopped"}) | CI_METHODS
STATUS_NAMES = (
    "CREATED",
    "TRIGGERED",
    "SCHEDULED",
    "EXECUTING",
    "ABORTED",
    "FAILED",
    "COMPLETED",
    "SKIPPED",
)
TWIRP_STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "unavailable": 503,
}
# Fields whose values are maps: their keys are data (label names, env vars), not field names.
MAP_FIELDS = frozenset(
    {"labels", "resourcesTotal", "resourcesInUse", "resourcesToUse", "resources", "environment"}
)
LOWER_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def script(name: str, *lines: str, behaviour: str = "ON_SUCCESS") -> dict[str, Any]:
    """A ``Command`` JSON with a script instruction."""
    return command(name, {"scriptInstruction": {"scripts": list(lines)}}, behaviour)


def background_script(name: str, *lines: str, behaviour: str = "ON_SUCCESS") -> dict[str, Any]:
    """A ``Command`` JSON with a background script instruction."""
    return command(name, {"backgroundScriptInstruction": {"scripts": list(lines)}}, behaviour)


def command(
    name: str, instruction: dict[str, Any], behaviour: str = "ON_SUCCESS"
) -> dict[str, Any]:
    """A ``Command`` JSON; the default behaviour is left out, as a proto3 writer does."""
    body: dict[str, Any] = {"name": name, **instruction}
    if behaviour != "ON_SUCCESS":
        body["executionBehaviour"] = behaviour
    return body


CLONE = command("clone", {"cloneInstruction": {}})
"""The ``clone`` command of a task (its instruction has no fields)."""


def status_name(value: Any) -> str:
    """A ``Status`` enum read from its name or its number."""
    if isinstance(value, int):
        return STATUS_NAMES[value]
    if value is None:
        return "CREATED"
    return str(value)


@dataclass
class FakeTask:
    """A task the controller hands out, with everything the worker reported about it."""

    task_id: str
    commands: list[dict[str, Any]]
    environment: dict[str, str] = field(default_factory=dict)
    timeout_in_seconds: int = 0
    secrets_to_mask: list[str] = field(default_factory=list)
    isolation: dict[str, Any] | None = field(default_factory=lambda: {"none": {}})
    resources_to_use: dict[str, float] = field(default_factory=dict)
    client_secret: str = field(default_factory=lambda: "client-" + uuid.uuid4().hex)
    server_secret: str = field(default_factory=lambda: "server-" + uuid.uuid4().hex)
    # What happened, as reported by the worker.
    worker: str | None = None
    delivered_at: float | None = None
    started: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: int = 0
    stopped_at: float | None = None
    initial_commands_calls: int = 0
    heartbeats: int = 0
    command_updates: list[dict[str, Any]] = field(default_factory=list)
    agent_finished: list[list[dict[str, Any]]] = field(default_factory=list)
    logs: dict[str, bytearray] = field(default_factory=dict)

    def final_statuses(self) -> dict[str, str]:
        """Command name -> status from the last ``ReportAgentFinished`` (empty if none yet)."""
        if not self.agent_finished:
            return {}
        return {r["name"]: status_name(r.get("status")) for r in self.agent_finished[-1]}

    def latest_update_statuses(self) -> dict[str, str]:
        """Command name -> the last status reported through ``ReportCommandUpdates``."""
        return {u["name"]: status_name(u.get("status")) for u in self.command_updates}

    def log_text(self, command_name: str | None = None) -> str:
        """Logged bytes of one command, or of every command, decoded leniently."""
        if command_name is not None:
            return bytes(self.logs.get(command_name, b"")).decode(errors="replace")
        return "".join(bytes(v).decode(errors="replace") for v in self.logs.values())


@dataclass(frozen=True)
class Call:
    """One HTTP request the controller received, and the status it answered."""

    service: str
    method: str
    headers: dict[str, str]
    body: Any
    at: float  # when the answer was ready
    status: int
    received: float = 0.0  # when the request arrived (a held poll arrives long before ``at``)


class FakeController:
    """Twirp ``CirrusWorkersService`` + ``CirrusCIService`` on a real socket; see module doc."""

    def __init__(
        self,
        registration_token: str | None = None,
        poll_interval: int = 1,
        hold_poll_seconds: float = 0.0,
        wrong_token_code: str = "unauthenticated",
    ) -> None:
        self.registration_token = registration_token or "reg-" + uuid.uuid4().hex
        self.wrong_token_code = wrong_token_code
        self._lock = threading.Condition()
        self._poll_interval = poll_interval
        self._hold_poll_seconds = hold_poll_seconds
        self._calls: list[Call] = []
        self._violations: list[str] = []
        self._auth_failures: list[str] = []
        self._sessions: dict[str, str] = {}
        self._disabled: dict[str, bool] = {}
        self._tasks: dict[str, FakeTask] = {}
        self._to_start: list[str] = []
        self._to_stop: list[str] = []
        self._shutdown = False
        self._outage = False
        self._closing = False
        # Misbehaviour: a task offered on every poll; oversized answers to one method.
        self._offer: Callable[[], FakeTask] | None = None
        self._oversize: dict[str, list[tuple[int, bool]]] = {}
        self.oversize_sent: list[str] = []
        # Snapshot archives served at GET /api/v1/snapshots/<id> (the controller's HTTP API).
        self.snapshots: dict[str, bytes] = {}
        # Caches and artifacts: the five Twirp methods and the /blobs/ URLs they hand out.
        self.blobs = FakeBlobs()
        self._server: ThreadingHTTPServer | None = None
        # Returns why waiting is pointless (e.g. "the worker exited"), or None to go on waiting.
        self.give_up_check: Callable[[], str | None] | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1 and serve from a background thread."""
        server = _QuietServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-controller"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.blobs.close()

    @property
    def url(self) -> str:
        """The endpoint to give a worker, e.g. ``http://127.0.0.1:40123``."""
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- scripting ---------------------------------------------------------------------------

    def queue_task(self, task: FakeTask) -> FakeTask:
        """Hand ``task`` to the next worker that polls."""
        with self._lock:
            self._tasks[task.task_id] = task
            self._to_start.append(task.task_id)
            self._lock.notify_all()
        return task

    def stop_task(self, task_id: str) -> None:
        """Ask the next poll to stop ``task_id`` (``tasksToStop``)."""
        with self._lock:
            self._to_stop.append(task_id)
            self._lock.notify_all()

    def request_shutdown(self) -> None:
        """Answer every later poll with ``shutdown: true``."""
        with self._lock:
            self._shutdown = True
            self._lock.notify_all()

    def set_poll_interval(self, seconds: int, hold_poll_seconds: float | None = None) -> None:
        """Change the advertised poll interval (and how long an idle poll is held open)."""
        with self._lock:
            self._poll_interval = seconds
            if hold_poll_seconds is not None:
                self._hold_poll_seconds = hold_poll_seconds

    def set_outage(self, active: bool) -> None:
        """While active, every call is answered ``503 unavailable`` (and recorded)."""
        with self._lock:
            self._outage = active
            self._lock.notify_all()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Answer 503 to everything inside the ``with`` block."""
        self.set_outage(True)
        try:
            yield
        finally:
            self.set_outage(False)

    def keep_offering(self, make_task: Callable[[], FakeTask] | None) -> None:
        """Hand a new task from ``make_task()`` to every later poll (``None`` stops it)."""
        with self._lock:
            self._offer = make_task
            self._lock.notify_all()

    def oversize_answers(self, method: str, size: int, *, chunked: bool, count: int = 1) -> None:
        """Answer the next ``count`` successful calls of ``method`` with a ``size``-byte body.

        The body is valid JSON (the real answer's fields plus padding), sent with its length
        or chunked (1 MiB chunks: an answer with no end in sight for the reader). Writing stops
        when the worker hangs up.
        """
        with self._lock:
            self._oversize.setdefault(method, []).extend([(size, chunked)] * count)

    def snapshot_answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /api/v1/snapshots/<id>`` of a snapshot in ``snapshots``: 200 with its bytes for
        the task headers of a known task (401 otherwise); None for any other path."""
        match = re.fullmatch(r"/api/v1/snapshots/([A-Za-z0-9_-]+)", path)
        if match is None or match.group(1) not in self.snapshots:
            return None
        with self._lock:
            worker = headers.get("worker-name", "")
            task = self._tasks.get(headers.get("org.cirruslabs.task-id", ""))
            allowed = (
                headers.get("registration-token") == self.registration_token
                and bool(worker)
                and self._sessions.get(worker) == headers.get("session-token")
                and task is not None
                and task.client_secret == headers.get("org.cirruslabs.client-secret")
            )
        return (200, self.snapshots[match.group(1)]) if allowed else (401, b"unauthorized")

    def take_oversize(self, path: str, status: int) -> tuple[int, bool] | None:
        """The scripted oversize answer for a call to ``path`` answered ``status``, if any."""
        method = path.rsplit("/", 1)[-1]
        with self._lock:
            queued = self._oversize.get(method)
            if status != 200 or not queued:
                return None
            self.oversize_sent.append(method)
            return queued.pop(0)

    def invalidate_sessions(self) -> None:
        """Forget every session token, so the next calls get ``unauthenticated``."""
        with self._lock:
            self._sessions.clear()

    # --- observing ---------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every call so far (or those of one method), oldest first."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def successful_calls(self, method: str) -> list[Call]:
        """Calls of ``method`` answered with 200."""
        return [c for c in self.calls(method) if c.status == 200]

    def task(self, task_id: str) -> FakeTask:
        """A copy of what is known about one task."""
        with self._lock:
            return copy.deepcopy(self._tasks[task_id])

    def session_workers(self) -> list[str]:
        """Worker names holding a session."""
        with self._lock:
            return sorted(self._sessions)

    def worker_disabled(self, worker: str) -> bool:
        """The disabled flag last set by ``UpdateStatus`` for ``worker``."""
        with self._lock:
            return self._disabled.get(worker, False)

    @property
    def violations(self) -> list[str]:
        """Departures from the wire contract seen so far (should stay empty)."""
        with self._lock:
            return list(self._violations)

    @property
    def auth_failures(self) -> list[str]:
        """Calls refused for their credentials (other than a wrong registration token)."""
        with self._lock:
            return list(self._auth_failures)

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float, what: str = "condition"
    ) -> T:
        """Return the first truthy value of ``predicate()``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            hopeless = self.give_up_check() if self.give_up_check is not None else None
            if hopeless:
                raise AssertionError(f"gave up waiting for {what}: {hopeless}; {self.summary()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                message = f"timed out after {timeout}s waiting for {what}"
                raise AssertionError(f"{message}; {self.summary()}")
            with self._lock:
                # Woken by every recorded call; the short cap also re-checks external state
                # (processes, files) the predicate may look at.
                self._lock.wait(min(remaining, 0.05))

    def wait_for_call(
        self,
        method: str,
        matching: Callable[[Call], bool] = lambda _: True,
        timeout: float = 30.0,
        after: float = 0.0,
    ) -> Call:
        """The first successful call of ``method`` received after ``after`` that matches."""

        def found() -> Call | None:
            for call in self.successful_calls(method):
                if call.received >= after and matching(call):
                    return call
            return None

        return self.wait_for(found, timeout, f"a successful {method} call")

    def summary(self) -> str:
        """A short account of the calls so far, for assertion messages."""
        with self._lock:
            names = [f"{c.method}:{c.status}" for c in self._calls[-40:]]
            return (
                f"{len(self._calls)} calls, last: {', '.join(names)}; "
                f"violations: {self._violations}; auth failures: {self._auth_failures}"
            )

    # --- request handling (server threads) ---------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        """Answer one POST; returns the HTTP status and the JSON body."""
        received = time.monotonic()
        match = re.fullmatch(rf"/twirp/{re.escape(PACKAGE)}\.(\w+)/(\w+)", path)
        if match is None:
            self._violate(f"unknown path {path}")
            return _error("not_found", f"no such route {path}")
        service, method = match.groups()
        known = WORKERS_METHODS if service == WORKERS else CI_METHODS if service == CI else set()
        if method not in known:
            self._violate(f"unknown method {service}/{method}")
            return _error("not_found", f"no such method {service}/{method}")
        if not headers.get("content-type", "").startswith("application/json"):
            self._violate(f"{method}: content-type {headers.get('content-type')!r}")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._violate(f"{method}: body is not JSON: {raw[:200]!r}")
            body = None
        status, answer = self._answer(service, method, headers, body)
        with self._lock:
            self._calls.append(
                Call(service, method, headers, body, time.monotonic(), status, received)
            )
            self._lock.notify_all()
        return status, answer

    def _answer(self, service: str, method: str, headers: dict[str, str], body: Any) -> Answer:
        with self._lock:
            if self._outage:
                return _error("unavailable", "controller outage (scripted)")
        if not isinstance(body, dict):
            return _error("invalid_argument", "body must be a JSON object")
        self._check_field_names(method, body)
        if method == "Register":
            return self._register(body)
        refusal = self._authenticate(method, headers)
        if refusal is not None:
            return refusal
        worker = headers["worker-name"]
        task_id = headers.get("org.cirruslabs.task-id", "")
        if method in BLOB_METHODS:
            return self.blobs.answer(method, task_id, body)
        handler = getattr(self, "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", method).lower())
        result: Answer = handler(worker, task_id, body)
        return result

    def _violate(self, text: str) -> None:
        with self._lock:
            self._violations.append(text)

    def _check_field_names(self, method: str, value: Any, path: str = "") -> None:
        if isinstance(value, list):
            for item in value:
                self._check_field_names(method, item, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not LOWER_CAMEL.fullmatch(key):
                    self._violate(f"{method}: field {path}{key} is not lowerCamelCase")
                if key not in MAP_FIELDS:
                    self._check_field_names(method, item, f"{path}{key}.")

    def _register(self, body: dict[str, Any]) -> Answer:
        if body.get("registrationToken") != self.registration_token:
            return _error(self.wrong_token_code, "invalid registration token")
        labels = (body.get("workerInfo") or {}).get("labels") or {}
        name = labels.get("name")
        if not name:
            self._violate("Register: workerInfo.labels.name is missing")
            return _error("invalid_argument", "workerInfo.labels.name is required")
        token = "session-" + uuid.uuid4().hex
        with self._lock:
            self._sessions[name] = token
        return 200, {"sessionToken": token}

    def _authenticate(self, method: str, headers: dict[str, str]) -> Answer | None:
        worker = headers.get("worker-name", "")
        with self._lock:
            if headers.get("registration-token") != self.registration_token:
                reason = "wrong or missing registration-token header"
            elif not worker or self._sessions.get(worker) != headers.get("session-token"):
                reason = f"session-token not issued to worker-name {worker!r}"
            else:
                reason = ""
            if reason:
                self._auth_failures.append(f"{method}: {reason}")
                return _error("unauthenticated", reason)
            if method not in TASK_SCOPED:
                return None
            task = self._tasks.get(headers.get("org.cirruslabs.task-id", ""))
            if (
                task is None
                or task.worker != worker
                or headers.get("org.cirruslabs.client-secret") != task.client_secret
            ):
                reason = "task id / client secret do not name a task of this worker"
                self._auth_failures.append(f"{method}: {reason}")
                return _error("permission_denied", reason)
        return None

    # CirrusWorkersService

    def _poll(self, worker: str, _task_id: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            if self._offer is not None:
                offered = self._offer()
                self._tasks[offered.task_id] = offered
                self._to_start.append(offered.task_id)
            hold_until = time.monotonic() + self._hold_poll_seconds
            while not (self._to_start or self._to_stop or self._shutdown or self._outage):
                remaining = hold_until - time.monotonic()
                if remaining <= 0 or self._closing:
                    break
                self._lock.wait(remaining)
            starts = [self._tasks[t] for t in self._to_start]
            self._to_start.clear()
            stops = list(self._to_stop)
            self._to_stop.clear()
            for task in starts:
                task.worker = worker
                task.delivered_at = time.monotonic()
            answer: dict[str, Any] = {"pollIntervalInSeconds": self._poll_interval}
            if starts:
                answer["tasksToStart"] = [_agent_aware_task(t) for t in starts]
            if stops:
                answer["tasksToStop"] = stops
            if self._shutdown:
                answer["shutdown"] = True
        if not isinstance(body.get("workerInfo"), dict):
            self._violate("Poll: workerInfo missing")
        return 200, answer

    def _task_started(self, _w: str, task_id: str, _b: dict[str, Any]) -> Answer:
        with self._lock:
            self._tasks[task_id].started += 1
        return 200, {}

    def _task_failed(self, _w: str, task_id: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            self._tasks[task_id].failures.append(str(body.get("message", "")))
        return 200, {}

    def _task_stopped(self, _w: str, task_id: str, _b: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._tasks[task_id]
            task.stopped += 1
            task.stopped_at = time.monotonic()
        return 200, {}

    def _update_status(self, worker: str, _t: str, body: dict[str, Any]) -> Answer:
        disabled = bool(body.get("disabled", False))
        with self._lock:
            self._disabled[worker] = disabled
        return 200, ({"disabled": True} if disabled else {})

    def _query_running_tasks(self, worker: str, _t: str, _b: dict[str, Any]) -> Answer:
        with self._lock:
            running = [
                t.task_id for t in self._tasks.values() if t.worker == worker and not t.stopped
            ]
            status = {"disabled": True} if self._disabled.get(worker) else {}
        return 200, {"status": status, "runningTasks": running}

    # CirrusCIService

    def _initial_commands(self, _w: str, task_id: str, _b: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._tasks[task_id]
            task.initial_commands_calls += 1
            answer: dict[str, Any] = {"commands": copy.deepcopy(task.commands)}
            if task.environment:
                answer["environment"] = dict(task.environment)
            if task.timeout_in_seconds:
                answer["timeoutInSeconds"] = str(task.timeout_in_seconds)  # int64: a string
            if task.secrets_to_mask:
                answer["secretsToMask"] = list(task.secrets_to_mask)
        return 200, answer

    def _report_command_updates(self, _w: str, task_id: str, body: dict[str, Any]) -> Answer:
        updates = body.get("updates") or []
        with self._lock:
            self._tasks[task_id].command_updates.extend(updates)
        return 200, {}

    def _append_logs(self, _w: str, task_id: str, body: dict[str, Any]) -> Answer:
        name = str(body.get("commandName", ""))
        try:
            data = base64.b64decode(body.get("data", ""), validate=True)
        except ValueError:
            self._violate(f"AppendLogs: data is not base64: {body.get('data')!r:.80}")
            return _error("invalid_argument", "data must be base64")
        if len(data) > 1024 * 1024:
            self._violate(f"AppendLogs: chunk of {len(data)} bytes exceeds 1 MiB")
        with self._lock:
            self._tasks[task_id].logs.setdefault(name, bytearray()).extend(data)
        return 200, {"bytesLogged": str(len(data))}

    def _heartbeat(self, _w: str, task_id: str, _b: dict[str, Any]) -> Answer:
        with self._lock:
            self._tasks[task_id].heartbeats += 1
        return 200, {}

    def _report_agent_finished(self, _w: str, task_id: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            self._tasks[task_id].agent_finished.append(list(body.get("commandResults") or []))
        return 200, {}


def _agent_aware_task(task: FakeTask) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "taskId": task.task_id,
        "clientSecret": task.client_secret,
        "serverSecret": task.server_secret,
    }
    if task.isolation is not None:  # None: leave it out, which means "none"
        answer["isolation"] = task.isolation
    if task.resources_to_use:
        answer["resourcesToUse"] = task.resources_to_use
    return answer


def _error(code: str, message: str) -> Answer:
    return TWIRP_STATUS[code], {"code": code, "msg": message}


class _QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client hangs up."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the worker dropped (killed, timed out); report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_class(controller: FakeController) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as an HTTP client pool expects
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK would add ~40 ms to every answer.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = controller.handle(self.path, headers, raw)
            oversize = controller.take_oversize(self.path, status)
            if oversize is None:
                self._send(status, answer)
            else:
                self._send_oversize(answer, *oversize)

        def do_PUT(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = controller.blobs.put(self.path, headers, self.rfile)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path.startswith("/blobs/"):
                status, blob = controller.blobs.open_for_get(self.path, headers)
                self.send_response(status)
                if blob is None:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with blob:
                    self.send_header("Content-Length", str(os.fstat(blob.fileno()).st_size))
                    self.end_headers()
                    shutil.copyfileobj(blob, self.wfile, 1024 * 1024)
                return
            snapshot = controller.snapshot_answer(self.path, headers)
            if snapshot is not None:
                self.send_response(snapshot[0])
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(snapshot[1])))
                self.end_headers()
                self.wfile.write(snapshot[1])
                return
            controller._violate(f"GET {self.path}")
            self._send(*_error("not_found", "Twirp accepts POST only"))

        def _send(self, status: int, answer: dict[str, Any]) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _send_oversize(self, answer: dict[str, Any], size: int, chunked: bool) -> None:
            opening = json.dumps(answer).encode()[:-1]  # the answer's fields, then the padding
            head = opening + (b', "padding": "' if answer else b'"padding": "')
            tail = b'"}'
            piece = b"x" * (1024 * 1024)
            self.send_response(200, "OK")
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            left = size - len(head) - len(tail)
            try:
                self._write_part(head, chunked)
                while left > 0:
                    part = piece if left >= len(piece) else piece[:left]
                    self._write_part(part, chunked)
                    left -= len(part)
                self._write_part(tail, chunked)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True  # the worker hung up, as it should

        def _write_part(self, data: bytes, chunked: bool) -> None:
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet; ``calls()`` is the record."""

    return Handler


# --- additions: worker pause/resume from an unregistered process, scripted answers, counted logs


SESSION_OPTIONAL = frozenset({"UpdateStatus", "QueryRunningTasks"})


@dataclass
class LogTally:
    """What ``AppendLogs`` delivered for one command, counted instead of stored."""

    chunks: int = 0
    total: int = 0
    largest: int = 0
    unexpected: int = 0  # bytes other than the one the test expects


class ScriptedController(FakeController):
    """``FakeController`` plus what ``worker pause``/``resume`` and very large logs need.

    * ``UpdateStatus`` and ``QueryRunningTasks`` also admit the registration token with an empty
      or missing session token, as our controller does for a process that never registered.
    * ``refuse_update_status`` and ``answer_disabled`` script the ``UpdateStatus`` answer.
    * ``script_running_tasks`` scripts the ``QueryRunningTasks`` answers.
    * ``count_logs`` makes ``AppendLogs`` count bytes (see ``log_tally``) instead of storing them,
      and keeps only the decoded length in the recorded call body, so hundreds of MB of output
      do not pile up in the test process.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._status_refusal: str | None = None
        self._forced_disabled: bool | None = None
        self._running_answers: list[list[str]] = []
        self._counted_byte: int | None = None
        self._tallies: dict[tuple[str, str], LogTally] = {}

    def refuse_update_status(self, code: str) -> None:
        """Answer every later ``UpdateStatus`` with the Twirp error ``code``."""
        with self._lock:
            self._status_refusal = code

    def answer_disabled(self, disabled: bool) -> None:
        """Answer every later ``UpdateStatus`` with ``disabled``, whatever was asked."""
        with self._lock:
            self._forced_disabled = disabled

    def script_running_tasks(self, *answers: list[str]) -> None:
        """Answer the next ``QueryRunningTasks`` calls with these lists; the last one repeats."""
        with self._lock:
            self._running_answers = [list(a) for a in answers]

    def count_logs(self, expected_byte: bytes) -> None:
        """Count ``AppendLogs`` bytes from now on; bytes other than ``expected_byte`` are noted."""
        assert len(expected_byte) == 1
        with self._lock:
            self._counted_byte = expected_byte[0]

    def log_tally(self, task_id: str, command_name: str) -> LogTally:
        """A copy of the counts for one command of one task (zeros if nothing came)."""
        with self._lock:
            return copy.copy(self._tallies.get((task_id, command_name), LogTally()))

    def _authenticate(self, method: str, headers: dict[str, str]) -> Answer | None:
        if method not in SESSION_OPTIONAL or headers.get("session-token"):
            return super()._authenticate(method, headers)
        if headers.get("registration-token") == self.registration_token and headers.get(
            "worker-name"
        ):
            return None
        reason = "wrong registration-token or missing worker-name without a session"
        with self._lock:
            self._auth_failures.append(f"{method}: {reason}")
        return _error("unauthenticated", reason)

    def _update_status(self, worker: str, task_id: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            refusal, forced = self._status_refusal, self._forced_disabled
        if refusal is not None:
            return _error(refusal, "updating the status is refused (scripted)")
        status, answer = super()._update_status(worker, task_id, body)
        if forced is None:
            return status, answer
        return status, ({"disabled": True} if forced else {})

    def _query_running_tasks(self, worker: str, task_id: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            if not self._running_answers:
                scripted = None
            elif len(self._running_answers) > 1:
                scripted = self._running_answers.pop(0)
            else:
                scripted = self._running_answers[0]
            status = {"disabled": True} if self._disabled.get(worker) else {}
        if scripted is None:
            return super()._query_running_tasks(worker, task_id, body)
        answer: dict[str, Any] = {"status": status}
        if scripted:  # proto3: an empty repeated field is left out
            answer["runningTasks"] = scripted
        return 200, answer

    def _append_logs(self, worker: str, task_id: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            counted = self._counted_byte
        if counted is None:
            return super()._append_logs(worker, task_id, body)
        name = str(body.get("commandName", ""))
        try:
            data = base64.b64decode(body.get("data", ""), validate=True)
        except ValueError:
            self._violate(f"AppendLogs: data is not base64: {body.get('data')!r:.80}")
            return _error("invalid_argument", "data must be base64")
        # The recorded call keeps the length only (the body dict is the one handle() records).
        body["data"] = f"<{len(data)} bytes counted>"
        if len(data) > 1024 * 1024:
            self._violate(f"AppendLogs: chunk of {len(data)} bytes exceeds 1 MiB")
        unexpected = len(data) - data.count(counted)
        with self._lock:
            tally = self._tallies.setdefault((task_id, name), LogTally())
            tally.chunks += 1
            tally.total += len(data)
            tally.largest = max(tally.largest, len(data))
            tally.unexpected += unexpected
        return 200, {"bytesLogged": str(len(data))}
