"""Client of the controller's HTTP API for users and tools (``/api/v1``, PROTOCOL.md).

Every failure is one of these, so that a command maps it to one line and an exit code::

    ControllerApiError              root: the call did not give the expected answer
    ├── ControllerUnreachable       no answer: connection refused, DNS, timeout
    ├── ControllerRefused           a 4xx answer; ``status`` and the controller's ``error`` text
    │   └── ResourceNotFound        404: no such build, task or log
    ├── ControllerServerError       a 5xx answer
    └── UnexpectedAnswer            an answer that is not the documented JSON

Answers are parsed with pydantic models that keep unknown fields (``extra="allow"``), so that
``model_dump(by_alias=True)`` gives back what the controller said for ``--json`` output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.errors import CirrusError

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT_SECONDS = 30.0


class ControllerApiError(CirrusError):
    """Root of the errors of the controller's HTTP API; ``str()`` is one line for a user."""


class ControllerUnreachable(ControllerApiError):
    """The controller did not answer (connection refused, unknown host, timeout)."""


class ControllerRefused(ControllerApiError):
    """The controller answered with a 4xx status; ``message`` is its ``error`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ResourceNotFound(ControllerRefused):
    """404: the build, task, command log or route does not exist."""


class ControllerServerError(ControllerApiError):
    """The controller answered with a 5xx status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UnexpectedAnswer(ControllerApiError):
    """The controller's answer is not the documented JSON."""


class ApiModel(BaseModel):
    """Base of the answers: camelCase aliases, unknown fields kept, immutable."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """Return the answer as JSON-ready data with the controller's field names."""
        return self.model_dump(mode="json", by_alias=True)


class TaskSummary(ApiModel):
    """A task as listed in a build."""

    id: str
    name: str
    status: str


class BuildInfo(ApiModel):
    """``POST /api/v1/builds`` and ``GET /api/v1/builds/{id}``."""

    id: str
    status: str
    tasks: tuple[TaskSummary, ...] = ()


class CommandInfo(ApiModel):
    """One command of a task with its latest reported status."""

    name: str
    status: str = ""
    duration_in_nanos: int = Field(default=0, alias="durationInNanos")


class TaskInfo(ApiModel):
    """``GET /api/v1/tasks/{id}``."""

    id: str
    build_id: str = Field(default="", alias="buildId")
    name: str = ""
    status: str
    worker: str | None = None
    failure_message: str | None = Field(default=None, alias="failureMessage")
    labels: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, float] = Field(default_factory=dict)
    isolation: Any = None
    skip_reason: str = Field(default="", alias="skipReason")
    commands: tuple[CommandInfo, ...] = ()


class CancelInfo(ApiModel):
    """``POST /api/v1/tasks/{id}/cancel``: the task's status at that moment."""

    id: str
    status: str


class EncryptedSecret(ApiModel):
    """``POST /api/v1/secrets/encrypt``: the ``ENCRYPTED[...]`` text."""

    encrypted: str


class WorkerEntry(ApiModel):
    """One element of ``GET /api/v1/workers``."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    resources_total: dict[str, float] = Field(default_factory=dict, alias="resourcesTotal")
    resources_in_use: dict[str, float] = Field(default_factory=dict, alias="resourcesInUse")
    running_tasks: Any = Field(default=None, alias="runningTasks")
    disabled: bool = False
    online: bool = False
    last_seen: Any = Field(default=None, alias="lastSeen")


_WORKER_LIST = TypeAdapter(tuple[WorkerEntry, ...])
M = TypeVar("M", bound=ApiModel)


def _one_line(text: str) -> str:
    """Collapse whitespace so that a message prints as one line."""
    return " ".join(text.split())


def error_text(response: httpx.Response) -> str:
    """Return the controller's explanation of a failed call: ``error`` of the JSON body, else
    the body's text, else the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("error", "msg", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return _one_line(value)
    text = _one_line(response.text)[:500]
    return text or f"HTTP {response.status_code} {response.reason_phrase}".strip()


class ControllerApiClient:
    """Async client of one controller's HTTP API, authenticated with the admin token.

    Give ``transport`` to talk to an in-process app or a mock; close with ``aclose`` or use
    ``async with``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout_seconds,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> ControllerApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- calls ----------------------------------------------------------------------------

    async def submit_build(
        self, config: str, environment: Mapping[str, str] | None = None, starlark: str = ""
    ) -> BuildInfo:
        """Submit a ``.cirrus.yml`` text (and a ``.cirrus.star`` text); a config the controller
        refuses is a 400 refusal."""
        body: dict[str, object] = {"config": config, "environment": dict(environment or {})}
        if starlark:
            body["starlark"] = starlark
        response = await self._send("POST", "/builds", json=body)
        return _parse(BuildInfo, response)

    async def get_build(self, build_id: str) -> BuildInfo:
        """Return a build and its tasks."""
        return _parse(BuildInfo, await self._send("GET", f"/builds/{_segment(build_id)}"))

    async def get_task(self, task_id: str) -> TaskInfo:
        """Return a task with its commands."""
        return _parse(TaskInfo, await self._send("GET", f"/tasks/{_segment(task_id)}"))

    async def task_log(self, task_id: str, command: str, offset: int = 0) -> bytes:
        """Return the log bytes of a command from ``offset`` (all of it so far by default)."""
        headers = {"Range": f"bytes={offset}-"} if offset else None
        response = await self._send(
            "GET",
            f"/tasks/{_segment(task_id)}/logs/{_segment(command)}",
            headers=headers,
            ok_statuses=(416,),
        )
        if response.status_code == 416:  # nothing past ``offset`` yet
            return b""
        if response.status_code == 206:
            return response.content
        # A server that ignores ``Range`` sends everything: skip what the caller has.
        return response.content[offset:]

    async def cancel_task(self, task_id: str) -> CancelInfo:
        """Ask the controller to cancel a task; return its status at that moment."""
        return _parse(CancelInfo, await self._send("POST", f"/tasks/{_segment(task_id)}/cancel"))

    async def trigger_task(self, task_id: str) -> CancelInfo:
        """Trigger a ``trigger_type: manual`` task; return its status right after (the same
        ``{"id", "status"}`` answer as a cancel)."""
        return _parse(CancelInfo, await self._send("POST", f"/tasks/{_segment(task_id)}/trigger"))

    async def list_workers(self) -> tuple[WorkerEntry, ...]:
        """Return the workers the controller knows."""
        response = await self._send("GET", "/workers")
        try:
            return _WORKER_LIST.validate_python(_json(response))
        except ValidationError as error:
            raise UnexpectedAnswer(_validation_text("GET /api/v1/workers", error)) from None

    async def encrypt_secret(self, value: str, repository: str = "") -> EncryptedSecret:
        """Return the controller's ``ENCRYPTED[...]`` text of ``value`` (bound to ``repository``
        unless empty)."""
        body = {"value": value, "repository": repository}
        return _parse(EncryptedSecret, await self._send("POST", "/secrets/encrypt", json=body))

    async def healthy(self) -> bool:
        """Return whether ``GET /healthz`` answers 200 (False when unreachable)."""
        try:
            response = await self._client.get("/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    # --- plumbing -------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        url = API_PREFIX + path
        try:
            response = await self._client.request(method, url, json=json, headers=headers)
        except httpx.TimeoutException:
            raise ControllerUnreachable(
                f"controller {self.base_url} did not answer {method} {url} in time"
            ) from None
        except httpx.HTTPError as error:
            reason = _one_line(str(error)) or type(error).__name__
            raise ControllerUnreachable(
                f"cannot reach controller {self.base_url}: {reason}"
            ) from None
        status = response.status_code
        if status < 400 or status in ok_statuses:
            return response
        text = error_text(response)
        if status == 404:
            raise ResourceNotFound(status, text)
        if status < 500:
            raise ControllerRefused(status, text)
        raise ControllerServerError(status, f"controller error {status}: {text}")


def _segment(value: str) -> str:
    """Quote a path segment (ids and command names are user input)."""
    return quote(value, safe="")


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        where = f"{response.request.method} {response.request.url.path}"
        raise UnexpectedAnswer(f"{where}: the controller did not answer with JSON") from None


def _validation_text(where: str, error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: unexpected answer at {location}: {first['msg']}"


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate(_json(response))
    except ValidationError as error:
        where = f"{response.request.method} {response.request.url.path}"
        raise UnexpectedAnswer(_validation_text(where, error)) from None


def dumps(value: object) -> str:
    """Return ``value`` as indented JSON for ``--json`` output."""
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)
