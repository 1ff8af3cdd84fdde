"""The API of forge builds: approving a fork's build, and the crons.

* ``POST /api/v1/builds/{id}/approve`` (operator): the tasks of a pull request from a fork
  start (and get their secrets); 409 when the build waits for no approval.
* ``POST /api/v1/crons`` (operator) ``{"name", "repository", "branch", "expression"}`` ->
  201 (new) or 200 (replaced) with the cron; ``GET /api/v1/crons`` -> ``{"crons": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.controller.api import api_timestamp, build_json, error_response
from app.controller.api_guard import guarded
from app.controller.auth import ApiAccess
from app.controller.cron_service import CronExpressionError, next_run
from app.controller.request_body import BodyError, parse_json, read_capped
from app.controller.scheduler_service import SchedulerService
from domain.forge_store import CronJob, ForgeStore
from domain.ports import Clock
from domain.repositories import RepositoryStore
from domain.store import BuildStore
from domain.tokens import Role

MAX_BODY_BYTES = 64 * 1024


class CronRegistration(pydantic.BaseModel):
    """Body of ``POST /api/v1/crons``."""

    name: str = pydantic.Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    repository: str
    branch: str = pydantic.Field(min_length=1, max_length=250)
    expression: str = pydantic.Field(min_length=1, max_length=200)


def cron_json(cron: CronJob) -> dict[str, Any]:
    """Return a cron as the API shows it."""
    return {
        "name": cron.name,
        "repository": cron.repository,
        "branch": cron.branch,
        "expression": cron.expression,
        "nextRun": api_timestamp(cron.next_run),
        "lastRun": None if cron.last_run is None else api_timestamp(cron.last_run),
        "lastBuildId": cron.last_build_id,
        "lastError": cron.last_error,
    }


class ForgeApi:
    """Endpoints of build approval and crons."""

    def __init__(
        self,
        store: BuildStore,
        forge_store: ForgeStore,
        repositories: RepositoryStore,
        scheduler: SchedulerService,
        access: ApiAccess,
        clock: Clock,
        on_approved: Callable[[], None],
    ) -> None:
        self._store = store
        self._forge = forge_store
        self._repositories = repositories
        self._scheduler = scheduler
        self._access = access
        self._clock = clock
        self._on_approved = on_approved

    def routes(self) -> list[Route]:
        """Return the routes."""
        operator = Role.OPERATOR
        return [
            Route(
                "/api/v1/builds/{build_id}/approve",
                guarded(self._access, operator, self.approve),
                methods=["POST"],
            ),
            Route(
                "/api/v1/crons", guarded(self._access, operator, self.add_cron), methods=["POST"]
            ),
            Route(
                "/api/v1/crons",
                guarded(self._access, Role.VIEWER, self.list_crons),
                methods=["GET"],
            ),
        ]

    async def approve(self, request: Request) -> Response:
        """``POST /api/v1/builds/{id}/approve``: start a held build's tasks."""
        build_id = request.path_params["build_id"]
        if await self._store.get_build(build_id) is None:
            return error_response(404, "no such build")
        if not await self.approve_build(build_id):
            return error_response(409, f"build {build_id} is not waiting for an approval")
        build = await self._store.get_build(build_id)
        assert build is not None  # builds are never deleted while approved
        return JSONResponse(build_json(build))

    async def approve_build(self, build_id: str) -> bool:
        """Approve a held build and queue its tasks; False if it was not waiting."""
        if not await self._forge.approve_build(build_id, "operator"):
            return False
        await self._scheduler.advance_build(build_id)
        await self._scheduler.build_submitted(build_id)
        self._on_approved()
        return True

    async def add_cron(self, request: Request) -> Response:
        """``POST /api/v1/crons``: add or replace a cron."""
        try:
            body = parse_json(await read_capped(request, MAX_BODY_BYTES))
            registration = CronRegistration.model_validate(body)
        except BodyError as error:
            return error_response(error.status, error.message)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return error_response(400, f"invalid request body: {where}: {first['msg']}")
        repository = await self._repositories.get_repository(registration.repository)
        if repository is None:
            return error_response(
                404, f"repository {registration.repository!r} is not registered (cirrus repo add)"
            )
        try:
            due = next_run(registration.expression, self._clock.now())
        except CronExpressionError as error:
            return error_response(400, str(error))
        cron = CronJob(
            repository.name, registration.name, registration.branch, registration.expression, due
        )
        created = await self._forge.save_cron(cron)
        return JSONResponse(cron_json(cron), status_code=201 if created else 200)

    async def list_crons(self, _request: Request) -> Response:
        """``GET /api/v1/crons``."""
        return JSONResponse({"crons": [cron_json(c) for c in await self._forge.list_crons()]})
