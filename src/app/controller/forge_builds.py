"""Builds from forge events and crons: the configuration read at the commit through the
forge's contents API, a git source, and the variables Cirrus CI set for such builds.

``CIRRUS_USER_PERMISSION`` is the sender's permission on the repository (admin, write, read,
none); a pull request gets ``CIRRUS_PR_DRAFT``, ``CIRRUS_PR_LABELS`` and ``CIRRUS_PR_TITLE``; a
cron build ``CIRRUS_CRON``. A pull request from a fork is held: its tasks wait for an approval
(``POST /api/v1/builds/{id}/approve``) before any worker, and so any secret, sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.controller.build_creation import BuildCreator, BuildRequest
from app.controller.scheduler_service import SchedulerService
from domain.build import TaskStatus
from domain.cirrus_config.context import SecretReader
from domain.forge_client import ForgeClient, ForgeClientFactory
from domain.forge_events import ZERO_COMMIT, EventKind, ForgeEvent
from domain.forge_store import CronJob, ForgeStore
from domain.repositories import Repository
from domain.source import BuildSource
from domain.store import BuildRecord, ControllerStore

log = logging.getLogger("cirrus.controller")

FORK_APPROVAL_REASON = "waiting for approval: pull request from a fork"
"""Why the tasks of a fork's pull request wait (as Cirrus CI said)."""

BRANCH_BUILDS_CANCELLED = 100
"""How many of a deleted branch's latest builds have their tasks cancelled."""


class NoConfiguration(Exception):
    """The commit has neither ``.cirrus.yml`` nor ``.cirrus.star``: no build."""


class ForgeBuilds:
    """Creates the builds forge events and crons ask for."""

    def __init__(
        self,
        creator: BuildCreator,
        store: ControllerStore,
        forge_store: ForgeStore,
        scheduler: SchedulerService,
        secrets: SecretReader,
        client_factory: ForgeClientFactory,
    ) -> None:
        self._creator = creator
        self._store = store
        self._forge = forge_store
        self._scheduler = scheduler
        self._secrets = secrets
        self._client_factory = client_factory
        self.on_watch: Callable[[], None] = lambda: None
        """Called once a build's commit statuses are watched (wakes the status reporter)."""

    def client(self, repository: Repository) -> ForgeClient:
        """Return a client of the repository's forge with its (decrypted) token."""
        token = self._secrets.decrypt(repository.encrypted_token, repository.name)
        return self._client_factory(repository, token)

    async def from_event(self, repository: Repository, event: ForgeEvent) -> BuildRecord:
        """Create the build of a push or pull request (``NoConfiguration`` without one)."""
        async with self.client(repository) as client:
            config, starlark = await _configuration(client, repository.name, event.commit)
            changed = event.changed_files
            if changed is None and event.pr is not None:
                changed = await client.pull_files(repository.name, event.pr)
            elif changed is None and event.before not in ("", ZERO_COMMIT):
                changed = await client.compare_files(repository.name, event.before, event.commit)
            permission = await client.permission(repository.name, event.sender)
        source = BuildSource(
            repository=repository.name,
            clone_url=repository.clone_url,
            branch=event.branch,
            tag=event.tag,
            pr=event.pr,
            base_branch=event.base_branch,
            commit=event.commit,
            change_title=event.title,
            change_message=event.message or event.title,
            change_author=event.author,
            default_branch=event.default_branch or repository.default_branch,
            changed_files=changed,
        )
        environment = {"CIRRUS_USER_PERMISSION": permission}
        if event.kind is EventKind.PULL_REQUEST:
            environment |= {
                "CIRRUS_PR_DRAFT": "true" if event.draft else "false",
                "CIRRUS_PR_LABELS": ",".join(event.labels),
                "CIRRUS_PR_TITLE": event.title,
            }
        hold = FORK_APPROVAL_REASON if event.from_fork else None
        return await self._create(BuildRequest(config, environment, starlark, source), hold)

    async def from_cron(self, repository: Repository, cron: CronJob) -> BuildRecord:
        """Create a cron's build at its branch's head (``NoConfiguration`` without one)."""
        async with self.client(repository) as client:
            commit = await client.branch_head(repository.name, cron.branch)
            config, starlark = await _configuration(client, repository.name, commit)
        source = BuildSource(
            repository=repository.name,
            clone_url=repository.clone_url,
            branch=cron.branch,
            commit=commit,
            change_title=f"cron {cron.name}",
            default_branch=repository.default_branch,
        )
        environment = {"CIRRUS_CRON": cron.name}
        return await self._create(BuildRequest(config, environment, starlark, source), None)

    async def _create(self, request: BuildRequest, hold: str | None) -> BuildRecord:
        source = request.source
        assert source is not None  # both callers give one

        async def prepare(build: BuildRecord) -> None:
            if hold is not None:
                await self._hold(build, hold)
            await self._forge.watch_build(build.id, source.repository, source.commit)
            self.on_watch()

        return await self._creator.create(request, before_scheduling=prepare)

    async def _hold(self, build: BuildRecord, reason: str) -> None:
        """Keep a build's tasks from workers until it is approved: tasks created queued go back
        to waiting (one a worker claimed meanwhile is cancelled; InitialCommands refuses it its
        secrets anyway)."""
        await self._forge.hold_build(build.id, reason)
        for task in build.tasks:
            if task.status is not TaskStatus.SCHEDULED:
                continue
            if not await self._store.set_status(
                task.id, {TaskStatus.SCHEDULED}, TaskStatus.CREATED
            ):
                await self._scheduler.cancel(task.id)

    async def branch_deleted(self, repository: Repository, branch: str) -> list[str]:
        """Cancel every unfinished task of the builds of a deleted branch; return their ids."""
        builds = await self._store.list_builds(
            repository.name, branch, None, BRANCH_BUILDS_CANCELLED, ""
        )
        cancelled = []
        for build in builds:
            for task in build.tasks:
                if not task.status.is_final:
                    await self._scheduler.cancel(task.id)
                    cancelled.append(task.id)
        return cancelled


async def _configuration(client: ForgeClient, repository: str, commit: str) -> tuple[str, str]:
    """Return ``.cirrus.yml`` and ``.cirrus.star`` at ``commit`` ("" for a missing one)."""
    config = await client.file_at(repository, ".cirrus.yml", commit)
    starlark = await client.file_at(repository, ".cirrus.star", commit)
    if config is None and starlark is None:
        raise NoConfiguration(f"{repository} has no .cirrus.yml or .cirrus.star at {commit}")
    return config or "", starlark or ""
