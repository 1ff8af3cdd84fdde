"""Commit statuses: from the builds' task states, through the stored outbox, to the forge.

Two background loops. The *reporter* looks at every watched build that is not finished (when
the scheduler nudges it, and every ``scan_seconds`` for changes another controller made; nudges
are ignored while its last pass found no watched build and this process added none since, so a
controller without forge builds does not query the watches for each task change),
enqueues a row for each status that changed (``domain.commit_statuses``) and records what it
enqueued with a compare-and-set, so two controllers never enqueue one change twice. The
*drainer* posts the rows: per repository, commit and context only the oldest unsent row is
due, so statuses arrive in order; a failed post is retried later with tenacity's exponential
backoff (capped), a rate-limited one when the limit resets. The outbox lives in the database:
a restart or a forge outage loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import tenacity

from app.controller.forge_settings import ForgeSettings
from domain.cirrus_config.context import SecretError, SecretReader
from domain.commit_statuses import changed_reports
from domain.forge_client import ForgeClient, ForgeClientFactory, ForgeError, ForgeRateLimited
from domain.forge_store import ForgeStore, OutboxRow
from domain.ports import Clock
from domain.repositories import Repository, RepositoryStore
from domain.store import BuildStore, StoreError

log = logging.getLogger("cirrus.controller")

BATCH = 100
"""Watched builds (and outbox rows) one pass looks at."""


class StatusReporter:
    """Turns task states into outbox rows and posts them."""

    def __init__(
        self,
        store: BuildStore,
        forge_store: ForgeStore,
        repositories: RepositoryStore,
        secrets: SecretReader,
        clock: Clock,
        settings: ForgeSettings,
        public_url: str,
        client_factory: ForgeClientFactory,
    ) -> None:
        self._store = store
        self._forge = forge_store
        self._repositories = repositories
        self._secrets = secrets
        self._clock = clock
        self._settings = settings
        self._public_url = public_url
        self._client_factory = client_factory
        self._changed = asyncio.Event()
        # Whether the last pass found watched builds (or this process added one since): while
        # none are, task changes need no pass; the periodic one finds another controller's.
        self._watching = True
        self._enqueued = asyncio.Event()
        self._backoff = tenacity.wait_exponential(
            multiplier=settings.retry_initial_seconds, max=settings.retry_max_seconds
        )

    def nudge(self) -> None:
        """Look at the builds soon: a task's state changed (cheap; called on the hot path)."""
        if self._watching:
            self._changed.set()

    def watch_added(self) -> None:
        """Look at the builds soon and after each change: this process watches a new build."""
        self._watching = True
        self._changed.set()

    async def run_reporter(self) -> None:
        """Enqueue status changes until cancelled."""
        while True:
            self._changed.clear()
            try:
                if await self.report_once():
                    self._enqueued.set()
            except StoreError as error:
                log.warning("commit statuses: %s", error)
            await _wait(self._changed, self._settings.scan_seconds)

    async def run_drainer(self) -> None:
        """Post the outbox until cancelled."""
        while True:
            self._enqueued.clear()
            try:
                while await self.drain_once():
                    pass
            except StoreError as error:
                log.warning("commit statuses: %s", error)
            await _wait(self._enqueued, min(1.0, self._settings.retry_initial_seconds))

    async def report_once(self) -> int:
        """Enqueue the changed statuses of the watched builds; return how many rows."""
        rows = 0
        watches = await self._forge.unfinished_watches(BATCH)
        self._watching = bool(watches)
        for watch in watches:
            build = await self._store.get_build(watch.build_id)
            if build is None:
                continue
            waiting = await self._forge.approval_wait(build.id)
            report = changed_reports(
                build, watch.repository, watch.commit, watch.reported, self._public_url, waiting
            )
            if not report.posts and not report.finished:
                continue
            if await self._forge.record_report(
                watch, report.reported, report.posts, finished=report.finished
            ):
                rows += len(report.posts)
        return rows

    async def drain_once(self) -> int:
        """Post every due row once; return how many were posted."""
        now = self._clock.now()
        posted = 0
        clients: dict[str, ForgeClient | None] = {}
        try:
            for row in await self._forge.due_statuses(now, BATCH):
                client = await self._client(clients, row.post.repository)
                if client is None:
                    continue
                if client.pause_until is not None and client.pause_until > self._clock.now():
                    await self._forge.status_failed(row.id, client.pause_until, "rate limited")
                    continue
                if not await self._forge.claim_status(row, now + self._settings.claim_seconds):
                    continue  # another controller posts it
                posted += await self._post(client, row)
        finally:
            for client in clients.values():
                if client is not None:
                    await client.aclose()
        return posted

    async def _post(self, client: ForgeClient, row: OutboxRow) -> int:
        try:
            await client.post_status(row.post)
        except ForgeRateLimited as error:
            await self._forge.status_failed(row.id, error.retry_at, str(error))
            return 0
        except ForgeError as error:
            retry_at = self._clock.now() + self._wait(row.attempts + 1)
            log.warning("status %s of %s: %s", row.post.context, row.post.commit[:12], error)
            await self._forge.status_failed(row.id, retry_at, str(error))
            return 0
        await self._forge.status_sent(row.id, self._clock.now())
        return 1

    def _wait(self, attempt: int) -> float:
        """The backoff before attempt ``attempt + 1`` (tenacity's exponential policy)."""
        state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
        state.attempt_number = attempt
        return float(self._backoff(state))

    async def _client(
        self, clients: dict[str, ForgeClient | None], repository: str
    ) -> ForgeClient | None:
        key = repository.casefold()
        if key not in clients:
            registered = await self._repositories.get_repository(repository)
            clients[key] = None if registered is None else self._new_client(registered)
        return clients[key]

    def _new_client(self, repository: Repository) -> ForgeClient | None:
        try:
            token = self._secrets.decrypt(repository.encrypted_token, repository.name)
        except SecretError as error:
            log.error("%s: statuses cannot be posted: %s", repository.name, error)
            return None
        return self._client_factory(repository, token)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
