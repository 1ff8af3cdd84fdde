"""Wiring of the forge features into one controller app: webhooks, commit statuses, fork
approvals and crons, on a store that keeps the forge tables (``HasForgeStore``).

``create_app`` calls ``forge_parts``; a store without the tables (none today) gets none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.routing import Route

from app.controller.api import ControllerApi
from app.controller.auth import ApiAccess
from app.controller.cron_service import CronRunner
from app.controller.forge_api import ForgeApi
from app.controller.forge_builds import ForgeBuilds
from app.controller.forge_settings import ForgeSettings
from app.controller.scheduler_service import SchedulerService
from app.controller.status_outbox import StatusReporter
from app.controller.twirp_services import TwirpServices
from app.controller.webhooks import WebhooksApi
from app.web.approval import approval_route
from app.web.site import WebInterface
from domain.cirrus_config.context import SecretReader
from domain.forge_client import ForgeClientFactory
from domain.forge_store import HasForgeStore
from domain.ports import Clock
from domain.repositories import RepositoryStore
from domain.store import ControllerStore


@dataclass(frozen=True, slots=True)
class ForgeParts:
    """The routes and the background loops of the forge features."""

    routes: list[Route]
    loops: list[Callable[[], Coroutine[Any, Any, None]]]
    reporter: StatusReporter | None = None
    crons: CronRunner | None = None


def forge_parts(
    store: ControllerStore,
    api: ControllerApi,
    twirp: TwirpServices,
    scheduler: SchedulerService,
    repositories: RepositoryStore,
    secrets: SecretReader,
    access: ApiAccess,
    clock: Clock,
    settings: ForgeSettings,
    client_factory: ForgeClientFactory,
    web: WebInterface | None = None,
) -> ForgeParts:
    """Return the forge features of an app (none for a store without the forge tables)."""
    if not isinstance(store, HasForgeStore):
        return ForgeParts([], [])
    tables = store.forge()
    reporter = StatusReporter(
        store, tables, repositories, secrets, clock, settings, settings.public_url, client_factory
    )
    builds = ForgeBuilds(api.builds, store, tables, scheduler, secrets, client_factory)
    crons = CronRunner(tables, repositories, builds, clock, settings.cron_check_seconds)

    async def held(build_id: str) -> bool:
        return await tables.approval_wait(build_id) is not None

    # Small hooks, cheap on the hot path: one read while a build has CREATED tasks, and an
    # in-memory nudge of the reporter whenever the scheduler changes a task.
    scheduler.approval_gate = held
    scheduler.on_change = reporter.nudge
    builds.on_watch = reporter.watch_added
    api.approval_wait = tables.approval_wait
    twirp.approval_wait = tables.approval_wait
    forge_api = ForgeApi(store, tables, repositories, scheduler, access, clock, reporter.nudge)
    routes = [*WebhooksApi(repositories, tables, builds, secrets).routes(), *forge_api.routes()]
    if web is not None:
        web.approval_wait = tables.approval_wait
        routes.append(approval_route(web, forge_api.approve_build))
    return ForgeParts(
        routes, [reporter.run_reporter, reporter.run_drainer, crons.run], reporter, crons
    )
