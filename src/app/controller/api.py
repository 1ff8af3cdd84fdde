"""The controller's HTTP API for users and tools (PROTOCOL.md, "Controller HTTP API").

JSON in and out under ``/api/v1``, guarded by ``Authorization: Bearer <token>`` with the role each
route needs (``app.controller.api_guard``: the admin token, or a user token); errors are
``{"error": "<text>"}``. ``/healthz`` and the OpenAPI document at ``/openapi.json`` need no token.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.controller.api_guard import guarded as role_guarded
from app.controller.auth import ApiAccess, TokenHash, bearer_token
from app.controller.build_creation import BuildCreator, BuildRequest, ParseSettings
from app.controller.build_sources import build_query, resolve_source
from app.controller.openapi import OPENAPI_DOCUMENT
from app.controller.request_body import BodyError, parse_json, read_capped
from app.controller.scheduler_service import SchedulerService
from app.controller.secrets_api import encrypt_secret
from domain.build import BuildConfigError, BuildSpec, TaskStatus
from domain.cirrus_config.context import InstanceResolver
from domain.cirrus_config.limits import MAX_BYTES_KEY, ConfigLimitError, ConfigLimits
from domain.cirrus_config.parsing import ConfigParser, SourceFiles
from domain.repositories import CLONE_TOKEN_REFUSED, CLONE_TOKEN_VARIABLE
from domain.secret_sealing import SecretSealer
from domain.source import SourceError, source_to_json
from domain.store import BuildRecord, ControllerStore, TaskRecord, WorkerRecord
from domain.tokens import Role
from domain.wire_protocol import IsolationWriter

Endpoint = Callable[[Request], Awaitable[Response]]

MANUAL_TRIGGER_REASON = "waiting for a manual trigger"
"""``pendingReason`` of a ``trigger_type: manual`` task nobody triggered yet."""


log = logging.getLogger("cirrus.controller")

BODY_OVERHEAD_BYTES = 64 * 1024
"""What a build's body may hold besides its two texts (the environment, JSON syntax)."""


def build_body_limit(limits: ConfigLimits) -> int:
    """Return the largest ``POST /api/v1/builds`` body: two texts of ``limits.max_bytes``, each
    up to three times longer in JSON (escapes such as ``\\u00e9``), and the overhead."""
    return 2 * 3 * limits.max_bytes + BODY_OVERHEAD_BYTES


class BuildSubmission(pydantic.BaseModel):
    """Body of ``POST /api/v1/builds``."""

    config: str
    environment: dict[str, str] = pydantic.Field(default_factory=dict)
    starlark: str = ""  # the text of the .cirrus.star next to the .cirrus.yml, if any
    source: dict[str, Any] | None = None  # domain.source JSON; checked by resolve_source

    @pydantic.field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        # What a process's environment cannot hold; lone surrogates are refused with the body.
        for name, text in value.items():
            if not name or "=" in name or "\x00" in name + text:
                raise ValueError(f"{name!r}: a variable needs a name without '=', and no NUL")
        return value


def error_response(status: int, message: str) -> JSONResponse:
    """Return ``{"error": message}`` with an HTTP status."""
    # A message may quote the request; a lone surrogate in it could not be encoded.
    printable = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": printable}, status_code=status)


def api_timestamp(seconds: float) -> str:
    """Return a UNIX time as the API writes times: ISO 8601 in UTC with a ``Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def build_json(build: BuildRecord) -> dict[str, Any]:
    """Return a build as the API shows it."""
    return {
        "id": build.id,
        "status": build.status.value,
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "status": task.status.value,
                "attempt": task.attempt,
            }
            for task in build.tasks
        ],
        "source": source_to_json(build.source),
        "createdAt": api_timestamp(build.created_at),
    }


def task_json(task: TaskRecord, isolation_json: IsolationWriter) -> dict[str, Any]:
    """Return a task as the API shows it (without ``pendingReason``; its isolation as the wire
    writes it)."""
    results = {result.name: result for result in task.command_results}
    commands: list[dict[str, Any]] = []
    for name in [*(c.name for c in task.spec.commands), *results]:
        if any(entry["name"] == name for entry in commands):
            continue
        result = results.get(name)
        commands.append(
            {
                "name": name,
                "status": result.status.name if result is not None else "CREATED",
                "durationInNanos": result.duration_in_nanos if result is not None else 0,
            }
        )
    return {
        "id": task.id,
        "buildId": task.build_id,
        "name": task.name,
        "status": task.status.value,
        "worker": task.worker,
        "failureMessage": task.failure_message,
        "labels": dict(task.spec.labels),
        "resources": dict(task.spec.resources),
        "isolation": isolation_json(task.spec.isolation),
        "timeoutInSeconds": task.spec.timeout_seconds,
        "dependsOn": list(task.spec.depends_on),
        "alias": task.spec.alias,
        "allowFailures": task.spec.allow_failures,
        "triggerType": "MANUAL" if task.spec.manual else "AUTOMATIC",
        "skipReason": task.spec.skip_reason,
        "notices": list(task.spec.notices),
        "commands": commands,
        "attempt": task.attempt,
        "rerunOf": task.rerun_of,
    }


def worker_json(worker: WorkerRecord, online: bool) -> dict[str, Any]:
    """Return a worker as the API shows it (resources and tasks as of its last poll)."""
    return {
        "name": worker.name,
        "labels": dict(worker.labels),
        "resourcesTotal": dict(worker.resources_total),
        "resourcesInUse": dict(worker.resources_in_use),
        "runningTasks": list(worker.running_task_ids),
        "disabled": worker.disabled,
        "online": online,
        "lastSeen": api_timestamp(worker.last_seen),
    }


class ControllerApi:
    """Endpoints of the HTTP API; ``routes()`` mounts them."""

    def __init__(
        self,
        store: ControllerStore,
        scheduler: SchedulerService,
        *,
        admin_token: TokenHash,
        secrets: SecretSealer,
        parser: ConfigParser,
        isolation_json: IsolationWriter,
        instances: InstanceResolver | None = None,
        starlark_http: bool = False,
        starlark_files: SourceFiles | None = None,
        limits: ConfigLimits | None = None,
        build_filter: Callable[[BuildSpec], BuildSpec] | None = None,
        access: ApiAccess | None = None,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        # Who may call what: the admin token, and user tokens with their roles.
        self.access = access or ApiAccess(admin_token)
        # The controller's cipher: encrypts for the API, and is the ``SecretReader`` that a
        # submission's ``BuildContext`` decrypts ``ENCRYPTED[...]`` values with.
        self.secrets = secrets
        # How a task's isolation is shown: the proto3 JSON the workers get.
        self._isolation_json = isolation_json
        # The instance mapping of the controller's config file (None: the shipped one).
        self.instances = instances
        # How large and deep a submitted configuration may be (the controller file's
        # ``config-max-*`` keys).
        self._limits = limits or ConfigLimits()
        # Why a build's tasks wait for an approval (a fork's pull request; set by
        # ``app.controller.forge_setup``), or None.
        self.approval_wait: Callable[[str], Awaitable[str | None]] | None = None
        # The one path from a configuration to a scheduled build (webhooks and crons share it).
        # ``starlark_http``: whether a .cirrus.star may use the ``http`` module (the controller
        # file's ``starlark-http``); ``starlark_files``: where its ``fs`` module reads (None:
        # nowhere); ``build_filter`` (``cirrus run TASK``): keeps the named task and its
        # dependencies (a BuildConfigError, answered 400, for an unknown name).
        self.builds = BuildCreator(
            store,
            scheduler,
            ParseSettings(
                parser,
                secrets,
                instances,
                starlark_http,
                starlark_files,
                self._limits,
                build_filter,
            ),
        )

    def routes(self) -> list[Route]:
        """Return the API's routes."""
        guarded = self._guarded
        operator, admin = Role.OPERATOR, Role.ADMIN
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/v1/builds", guarded(self.submit_build, operator), methods=["POST"]),
            Route("/api/v1/builds", guarded(self.list_builds), methods=["GET"]),
            Route("/api/v1/builds/{build_id}", guarded(self.get_build), methods=["GET"]),
            Route("/api/v1/tasks/{task_id}", guarded(self.get_task), methods=["GET"]),
            Route(
                "/api/v1/tasks/{task_id}/logs/{command}", guarded(self.task_log), methods=["GET"]
            ),
            Route(
                "/api/v1/tasks/{task_id}/cancel",
                guarded(self.cancel_task, operator),
                methods=["POST"],
            ),
            Route(
                "/api/v1/tasks/{task_id}/trigger",
                guarded(self.trigger_task, operator),
                methods=["POST"],
            ),
            Route("/api/v1/workers", guarded(self.list_workers), methods=["GET"]),
            Route("/api/v1/secrets/encrypt", guarded(self.encrypt_secret, admin), methods=["POST"]),
        ]

    def _guarded(self, endpoint: Endpoint, needed: Role = Role.VIEWER) -> Endpoint:
        """Return ``endpoint`` behind the role check (reading needs ``viewer``)."""
        return role_guarded(self.access, needed, endpoint)

    async def healthz(self, _request: Request) -> Response:
        """``GET /healthz``: the process answers."""
        return JSONResponse({"status": "ok"})

    async def openapi(self, _request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI 3.1 description of this API."""
        return JSONResponse(OPENAPI_DOCUMENT)

    async def submit_build(self, request: Request) -> Response:
        """``POST /api/v1/builds``: parse, validate and queue a build."""
        limit = build_body_limit(self._limits)
        try:
            body = parse_json(await read_capped(request, limit))
            submission = BuildSubmission.model_validate(body)
        except BodyError as error:
            if error.status == 413:
                return error_response(413, f"{error.message} (6 x {MAX_BYTES_KEY} + 64 KiB)")
            return error_response(error.status, error.message)
        except pydantic.ValidationError as error:
            return error_response(400, f"invalid request body: {_describe(error)}")
        if CLONE_TOKEN_VARIABLE in submission.environment:
            return error_response(400, CLONE_TOKEN_REFUSED)
        try:
            source = await resolve_source(self._store, submission.source)
        except SourceError as error:
            return error_response(400, f"invalid request body: {error}")
        # Who submitted it: the web builds list's "mine" filter.
        who = await self.access.identity_of(bearer_token(request.headers.get("authorization")))
        request_ = BuildRequest(
            submission.config,
            submission.environment,
            submission.starlark,
            source,
            submitted_by=who[0] if who else "",
        )
        try:
            current = await self.builds.create(request_)
        except ConfigLimitError as error:
            return error_response(413 if error.too_large else 400, str(error))
        except BuildConfigError as error:
            return error_response(400, str(error))
        except RecursionError:
            return error_response(400, "the configuration is nested too deeply")
        return JSONResponse(build_json(current), status_code=201)

    async def list_builds(self, request: Request) -> Response:
        """``GET /api/v1/builds``: ``{"builds": [...]}``, newest first, filtered."""
        try:
            query = build_query(request.query_params)
        except ValueError as error:
            return error_response(400, str(error))
        builds = await self._store.list_builds(
            query.repository, query.branch, query.status, query.limit, query.before
        )
        return JSONResponse({"builds": [build_json(build) for build in builds]})

    async def get_build(self, request: Request) -> Response:
        """``GET /api/v1/builds/{id}``."""
        build = await self._store.get_build(request.path_params["build_id"])
        if build is None:
            return error_response(404, "no such build")
        return JSONResponse(build_json(build))

    async def get_task(self, request: Request) -> Response:
        """``GET /api/v1/tasks/{id}``, with ``pendingReason`` while the task waits."""
        task = await self._store.get_task(request.path_params["task_id"])
        if task is None:
            return error_response(404, "no such task")
        body = task_json(task, self._isolation_json)
        if task.status is TaskStatus.SCHEDULED and task.worker is None:
            reason = await self._scheduler.pending_reason(task)
            body["pendingReason"] = reason.text
            body["pendingReasonKind"] = reason.kind.value
        elif task.waiting_for_trigger:
            body["pendingReason"] = MANUAL_TRIGGER_REASON
        elif task.status is TaskStatus.CREATED and (
            approval := self.approval_wait and await self.approval_wait(task.build_id)
        ):
            body["pendingReason"] = approval
        elif task.status is TaskStatus.CREATED:
            waiting = ", ".join(task.spec.depends_on)
            body["pendingReason"] = f"waiting for {waiting} to complete"
        return JSONResponse(body)

    async def task_log(self, request: Request) -> Response:
        """``GET /api/v1/tasks/{id}/logs/{command}``: the log so far, streamed in chunks."""
        task_id, command = request.path_params["task_id"], request.path_params["command"]
        task = await self._store.get_task(task_id)
        if task is None:
            return error_response(404, "no such task")
        known = {c.name for c in task.spec.commands} | {r.name for r in task.command_results}
        if command not in known and await self._store.log_size(task_id, command) == 0:
            return error_response(404, f'task {task_id} has no command "{command}"')
        return StreamingResponse(
            self._store.iter_log(task_id, command), media_type="text/plain; charset=utf-8"
        )

    async def cancel_task(self, request: Request) -> Response:
        """``POST /api/v1/tasks/{id}/cancel``: the status right after the request."""
        task = await self._scheduler.cancel(request.path_params["task_id"])
        if task is None:
            return error_response(404, "no such task")
        return JSONResponse({"id": task.id, "status": task.status.value})

    async def encrypt_secret(self, request: Request) -> Response:
        """``POST /api/v1/secrets/encrypt``: ``{"value", "repository"}`` → ``{"encrypted"}``."""
        return await encrypt_secret(request, self.secrets)

    async def trigger_task(self, request: Request) -> Response:
        """``POST /api/v1/tasks/{id}/trigger``: start a manual task (it still waits for its
        dependencies); the status right after. Triggering twice is harmless."""
        task = await self._store.get_task(request.path_params["task_id"])
        if task is None:
            return error_response(404, "no such task")
        if not task.spec.manual:
            return error_response(409, f"task {task.id} is not a manual task (trigger_type)")
        triggered = await self._scheduler.trigger(task.id) or task
        return JSONResponse({"id": triggered.id, "status": triggered.status.value})

    async def list_workers(self, _request: Request) -> Response:
        """``GET /api/v1/workers``."""
        workers = await self._store.list_workers()
        return JSONResponse([worker_json(w, self._scheduler.is_online(w)) for w in workers])


def _describe(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
