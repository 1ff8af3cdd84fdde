"""``POST /api/v1/tasks/{id}/rerun`` and ``POST /api/v1/builds/{id}/rerun`` (operators).

A task re-run answers ``201 {"id", "status"}`` of the task's new attempt and ``attempts``, every
attempt it created (its dependants' too); a build re-run takes ``{"failedOnly": bool}`` and
answers ``201 {"attempts": [{"id", "name", "status", "attempt", "rerunOf"}]}``. A task that is
not final, or an earlier attempt, answers 409 with the reason (``domain.rerun``).
"""

from __future__ import annotations

from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.controller.api_guard import guarded
from app.controller.auth import ApiAccess
from app.controller.request_body import BodyError, parse_json, read_capped
from app.controller.reruns import NoSuchRecordError, rerun_build, rerun_task
from app.controller.scheduler_service import SchedulerService
from domain.rerun import RerunError
from domain.store import ControllerStore, TaskRecord
from domain.tokens import Role

BODY_LIMIT = 4096


class BuildRerun(pydantic.BaseModel):
    """Body of ``POST /api/v1/builds/{id}/rerun`` (it may be empty)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    failedOnly: bool = False  # the API's JSON name


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def attempt_json(task: TaskRecord) -> dict[str, Any]:
    """Return a new attempt as the re-run endpoints show it."""
    return {
        "id": task.id,
        "name": task.name,
        "status": task.status.value,
        "attempt": task.attempt,
        "rerunOf": task.rerun_of,
    }


class RerunsApi:
    """The two re-run endpoints; ``routes()`` mounts them for operators."""

    def __init__(
        self, store: ControllerStore, scheduler: SchedulerService, access: ApiAccess
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._access = access

    def routes(self) -> list[Route]:
        """Return the routes."""
        operator = Role.OPERATOR
        return [
            Route(
                "/api/v1/tasks/{task_id}/rerun",
                guarded(self._access, operator, self.rerun_task),
                methods=["POST"],
            ),
            Route(
                "/api/v1/builds/{build_id}/rerun",
                guarded(self._access, operator, self.rerun_build),
                methods=["POST"],
            ),
        ]

    async def rerun_task(self, request: Request) -> Response:
        """``POST /api/v1/tasks/{id}/rerun``: a new attempt of the task (and of its dependants)."""
        try:
            created = await rerun_task(self._store, self._scheduler, request.path_params["task_id"])
        except NoSuchRecordError:
            return _error(404, "no such task")
        except RerunError as error:
            return _error(409, str(error))
        first = created[0]
        return JSONResponse(
            {
                "id": first.id,
                "status": first.status.value,
                "attempts": [attempt_json(task) for task in created],
            },
            status_code=201,
        )

    async def rerun_build(self, request: Request) -> Response:
        """``POST /api/v1/builds/{id}/rerun``: new attempts of its final (or failed) tasks."""
        try:
            raw = await read_capped(request, BODY_LIMIT)
            body = BuildRerun.model_validate(parse_json(raw) if raw.strip() else {})
        except BodyError as error:
            return _error(error.status, error.message)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return _error(400, f"invalid request body: {where}: {first['msg']}")
        try:
            created = await rerun_build(
                self._store,
                self._scheduler,
                request.path_params["build_id"],
                failed_only=body.failedOnly,
            )
        except NoSuchRecordError:
            return _error(404, "no such build")
        except RerunError as error:
            return _error(409, str(error))
        return JSONResponse({"attempts": [attempt_json(task) for task in created]}, status_code=201)
