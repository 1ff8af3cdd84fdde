"""Client of the controller's HTTP API for users and tools (``/api/v1``, PROTOCOL.md).

Every failure is one of the errors of ``domain.controller_calls`` (re-exported here, where the
commands import them from), so that a command maps it to one line and an exit code.

Answers are parsed with pydantic models that keep unknown fields (``extra="allow"``), so that
``model_dump(by_alias=True)`` gives back what the controller said for ``--json`` output.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
)

from adapters.controller_access import BuildRerun, TaskRerun, UserTokenCreated, UserTokenList
from adapters.controller_artifacts import TaskArtifacts
from adapters.controller_crons import CronEntry, CronList
from domain.controller_calls import ControllerApiError as ControllerApiError
from domain.controller_calls import ControllerRefused as ControllerRefused
from domain.controller_calls import ControllerServerError as ControllerServerError
from domain.controller_calls import ControllerUnreachable as ControllerUnreachable
from domain.controller_calls import ResourceNotFound as ResourceNotFound
from domain.controller_calls import UnexpectedAnswer as UnexpectedAnswer
from domain.source import BuildSource, SourceError, source_from_json, source_to_json

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT_SECONDS = 30.0
UPLOAD_CHUNK_BYTES = 1 << 20


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


def _source(value: object) -> BuildSource | None:
    """Parse an answer's ``"source"`` object (pydantic reports the ``ValueError``)."""
    if value is None or isinstance(value, BuildSource):
        return value
    if not isinstance(value, Mapping):
        raise ValueError("expected a JSON object")
    try:
        return source_from_json(value)
    except SourceError as error:
        raise ValueError(str(error)) from None


def _source_document(value: BuildSource | None) -> dict[str, object] | None:
    return None if value is None else source_to_json(value)


SourceField = Annotated[
    BuildSource | None, PlainValidator(_source), PlainSerializer(_source_document)
]


class BuildInfo(ApiModel):
    """``POST /api/v1/builds`` and ``GET /api/v1/builds/{id}``."""

    id: str
    status: str
    tasks: tuple[TaskSummary, ...] = ()
    source: SourceField = None


class SnapshotInfo(ApiModel):
    """``POST /api/v1/snapshots``: the stored snapshot."""

    id: str
    sha256: str
    size: int


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
    pending_reason: str = Field(default="", alias="pendingReason")
    pending_reason_kind: str = Field(default="", alias="pendingReasonKind")
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


class RepositoryEntry(ApiModel):
    """One repository of ``GET /api/v1/repositories`` (never a credential)."""

    name: str
    forge: str
    url: str
    clone_url: str = Field(alias="cloneUrl")
    default_branch: str = Field(default="", alias="defaultBranch")
    created_at: str = Field(default="", alias="createdAt")


class RepositoryRegistered(RepositoryEntry):
    """``POST /api/v1/repositories``: the repository, whether it is new, and the webhook
    secret the controller generated (only then, and only in this answer)."""

    created: bool
    webhook_secret: str | None = Field(default=None, alias="webhookSecret")


class RepositoryList(ApiModel):
    """``GET /api/v1/repositories``."""

    repositories: tuple[RepositoryEntry, ...] = ()


_WORKER_LIST = TypeAdapter(tuple[WorkerEntry, ...])
M = TypeVar("M", bound=BaseModel)


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
        self,
        config: str,
        environment: Mapping[str, str] | None = None,
        starlark: str = "",
        source: BuildSource | None = None,
    ) -> BuildInfo:
        """Submit a ``.cirrus.yml`` text (and a ``.cirrus.star`` text, and where the code comes
        from); a config the controller refuses is a 400 refusal."""
        body: dict[str, object] = {"config": config, "environment": dict(environment or {})}
        if starlark:
            body["starlark"] = starlark
        if source is not None and source != BuildSource():
            body["source"] = source_to_json(source)
        response = await self._send("POST", "/builds", json=body)
        return _parse(BuildInfo, response)

    async def upload_snapshot(self, path: str | Path) -> SnapshotInfo:
        """Upload a snapshot ``.tar.gz`` (streamed from ``path``, not read into memory)."""
        # Disk I/O in a thread: a big archive must not stall the event loop.
        handle = await asyncio.to_thread(Path(path).open, "rb")
        with handle:
            size = os.fstat(handle.fileno()).st_size

            async def chunks() -> AsyncIterator[bytes]:
                while chunk := await asyncio.to_thread(handle.read, UPLOAD_CHUNK_BYTES):
                    yield chunk

            # A Content-Length instead of chunked encoding: the controller can refuse an
            # archive over its size limit before reading any of it.
            headers = {"Content-Type": "application/gzip", "Content-Length": str(size)}
            response = await self._send("POST", "/snapshots", content=chunks(), headers=headers)
        return _parse(SnapshotInfo, response)

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

    async def rerun_task(self, task_id: str) -> TaskRerun:
        """Re-run a final task: its new attempt (and its dependants' new attempts)."""
        return _parse(TaskRerun, await self._send("POST", f"/tasks/{_segment(task_id)}/rerun"))

    async def rerun_build(self, build_id: str, *, failed_only: bool) -> BuildRerun:
        """Re-run a build's final tasks (or only its failed and aborted ones)."""
        body = {"failedOnly": failed_only}
        response = await self._send("POST", f"/builds/{_segment(build_id)}/rerun", json=body)
        return _parse(BuildRerun, response)

    async def approve_build(self, build_id: str) -> BuildInfo:
        """Approve a held build (a fork's pull request): its tasks start."""
        response = await self._send("POST", f"/builds/{_segment(build_id)}/approve")
        return _parse(BuildInfo, response)

    async def add_cron(self, cron: Mapping[str, str]) -> CronEntry:
        """Add (or replace) a cron: ``name``, ``repository``, ``branch``, ``expression``."""
        return _parse(CronEntry, await self._send("POST", "/crons", json=dict(cron)))

    async def list_crons(self) -> CronList:
        """Return the crons."""
        return _parse(CronList, await self._send("GET", "/crons"))

    async def create_token(self, role: str, name: str = "") -> UserTokenCreated:
        """Make a user token with ``role`` (the answer holds the token, once)."""
        response = await self._send("POST", "/tokens", json={"role": role, "name": name})
        return _parse(UserTokenCreated, response)

    async def list_tokens(self) -> UserTokenList:
        """Return the user tokens (names, roles, creation times; never the tokens)."""
        return _parse(UserTokenList, await self._send("GET", "/tokens"))

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

    async def add_repository(self, registration: Mapping[str, str]) -> RepositoryRegistered:
        """Register a repository (``name``, ``forge``, ``url``, ``token``, optional
        ``cloneUrl`` and ``webhookSecret``), or update the one of that name."""
        response = await self._send("POST", "/repositories", json=dict(registration))
        return _parse(RepositoryRegistered, response)

    async def list_repositories(self) -> RepositoryList:
        """Return the registered repositories."""
        return _parse(RepositoryList, await self._send("GET", "/repositories"))

    async def task_artifacts(self, task_id: str) -> TaskArtifacts:
        """Return a task's committed artifacts and JUnit test results."""
        return _parse(
            TaskArtifacts, await self._send("GET", f"/tasks/{_segment(task_id)}/artifacts")
        )

    async def download_artifact(self, task_id: str, name: str, path: str, target: Path) -> int:
        """Stream one artifact file to ``target`` (complete or not at all); return its size."""
        url = f"{API_PREFIX}/tasks/{_segment(task_id)}/artifacts/{_segment(name)}/{quote(path)}"
        partial = target.with_name(target.name + ".partial")
        size = 0
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise ControllerRefused(response.status_code, error_text(response))
                with partial.open("wb") as file:
                    async for chunk in response.aiter_bytes(UPLOAD_CHUNK_BYTES):
                        await asyncio.to_thread(file.write, chunk)
                        size += len(chunk)
        except httpx.HTTPError as error:
            partial.unlink(missing_ok=True)
            reason = _one_line(str(error)) or type(error).__name__
            raise ControllerUnreachable(f"downloading {name}/{path} failed: {reason}") from None
        partial.replace(target)
        return size

    # --- plumbing -------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        content: AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        url = API_PREFIX + path
        try:
            response = await self._client.request(
                method, url, json=json, content=content, headers=headers
            )
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
