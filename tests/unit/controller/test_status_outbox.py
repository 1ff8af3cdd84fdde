"""The status outbox's drainer on fakes of its ports: posts through the client the factory makes
for the repository and its decrypted token, retries a failed post after tenacity's backoff and
a rate-limited one when the limit resets; the reporter queries the watches on task changes
only while a build is watched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace

from app.controller.forge_settings import ForgeSettings
from app.controller.status_outbox import StatusReporter
from domain.forge_client import ForgeClient, ForgeError, ForgeRateLimited, ForgeUnavailable
from domain.forge_store import StatusPost, StatusWatch
from domain.repositories import Repository
from tests.unit.controller.fake_forge import (
    REPOSITORY,
    ClearSecrets,
    FakeForgeClient,
    FakeOutbox,
    FakeRepositories,
)
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock

POST = StatusPost("octo/demo", "a" * 40, "ci/build", "success", "passed")
SETTINGS = ForgeSettings(retry_initial_seconds=2.0, retry_max_seconds=600.0)


class Forge:
    """The client factory: one ``FakeForgeClient`` per call, all kept; ``error`` is given to
    each."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.clients: list[FakeForgeClient] = []

    def __call__(self, repository: Repository, token: str) -> ForgeClient:
        client = FakeForgeClient(repository.name, token, self.error)
        self.clients.append(client)
        return client


def _reporter(outbox: FakeOutbox, forge: Forge, clock: FakeClock) -> StatusReporter:
    return StatusReporter(
        FakeStore(clock),
        outbox,
        FakeRepositories(REPOSITORY),
        ClearSecrets(),
        clock,
        SETTINGS,
        "https://ci.example.test",
        forge,
    )


async def test_a_due_status_is_posted_with_the_repositorys_token_and_marked_sent() -> None:
    clock, outbox, forge = FakeClock(), FakeOutbox(), Forge()
    row = outbox.enqueue(POST)

    assert await _reporter(outbox, forge, clock).drain_once() == 1

    [client] = forge.clients
    assert (client.repository, client.token) == ("octo/demo", "token-of-demo")
    assert client.posted == [POST]
    assert client.closed
    assert outbox.sent == {row.id: clock.now()}


async def test_a_failed_post_is_retried_after_the_first_backoff() -> None:
    clock, outbox = FakeClock(), FakeOutbox()
    row = outbox.enqueue(POST)

    posted = await _reporter(outbox, Forge(ForgeUnavailable("HTTP 502")), clock).drain_once()

    assert posted == 0
    assert outbox.sent == {}
    assert outbox.failures == [(row.id, clock.now() + 2.0, "HTTP 502")]


async def test_a_rate_limited_post_is_retried_when_the_limit_resets() -> None:
    clock, outbox = FakeClock(), FakeOutbox()
    row = outbox.enqueue(POST)
    reset = clock.now() + 900.0

    await _reporter(outbox, Forge(ForgeRateLimited("rate limited", reset)), clock).drain_once()

    assert outbox.failures == [(row.id, reset, "rate limited")]


async def test_a_refused_post_is_not_sent_and_counts_an_attempt() -> None:
    clock, outbox = FakeClock(), FakeOutbox()
    outbox.enqueue(POST)

    await _reporter(outbox, Forge(ForgeError("HTTP 422: bad state")), clock).drain_once()

    assert [row.attempts for row in outbox.rows] == [1]
    assert outbox.sent == {}


async def test_a_status_of_an_unregistered_repository_stays_in_the_outbox() -> None:
    clock, outbox, forge = FakeClock(), FakeOutbox(), Forge()
    outbox.enqueue(StatusPost("someone/else", "b" * 40, "ci/build", "pending"))

    assert await _reporter(outbox, forge, clock).drain_once() == 0
    assert forge.clients == []
    assert outbox.failures == []


async def _until(predicate: Callable[[], bool]) -> None:
    """Let the reporter's loop run (no real waits in its fakes) until ``predicate`` holds."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the reporter did not get there")


async def test_task_changes_make_no_pass_until_a_pass_or_this_process_finds_a_watched_build() -> (
    None
):
    clock, outbox = FakeClock(), FakeOutbox()
    reporter = StatusReporter(
        FakeStore(clock),
        outbox,
        FakeRepositories(REPOSITORY),
        ClearSecrets(),
        clock,
        replace(SETTINGS, scan_seconds=3600.0),
        "https://ci.example.test",
        Forge(),
    )
    loop = asyncio.create_task(reporter.run_reporter())
    try:
        await _until(lambda: outbox.watch_queries == 1)  # the first pass finds no watch
        for _ in range(3):
            reporter.nudge()
            for _ in range(20):
                await asyncio.sleep(0)
        assert outbox.watch_queries == 1
        outbox.watches.append(StatusWatch("404", "octo/demo", "a" * 40, {}))
        reporter.watch_added()
        await _until(lambda: outbox.watch_queries == 2)
        reporter.nudge()  # a build is watched now: each task change makes a pass
        await _until(lambda: outbox.watch_queries == 3)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
