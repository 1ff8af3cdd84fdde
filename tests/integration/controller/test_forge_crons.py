"""Cron builds on two controllers sharing one PostgreSQL database: a cron that fell due (ten
times over, while nobody looked) runs once, on one of them, at the branch's head commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from adapters.secrets import SecretCipher
from adapters.storage.postgres_store import PostgresStore
from app.controller.forge_settings import ForgeSettings
from app.controller.forge_setup import ForgeParts
from app.controller.server import create_app
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    REGISTRATION_TOKEN,
    RunningController,
    ShiftableClock,
    serve_controller,
)
from tests.integration.forge_standin import ForgeState, forge_standin
from tests.integration.git_servers import Repo
from tests.integration.postgres_server import shared_server, stop_shared_server

REPOSITORY = "acme/app"


@pytest.fixture(scope="module", autouse=True)
def postgres_cluster() -> Iterator[None]:
    """Stop the private PostgreSQL cluster at the end of the module."""
    yield
    stop_shared_server()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A scratch database, dropped after the test."""
    url = shared_server().create_database()
    try:
        yield url
    finally:
        shared_server().drop_database(url)


async def test_a_cron_fires_once_across_two_controllers_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    repo = Repo(tmp_path / "git", "app")
    head = repo.commit({".cirrus.yml": "task:\n  name: nightly\n  script: echo hi\n"}, "one")
    state = ForgeState(repositories={REPOSITORY: repo.bare})
    clock = ShiftableClock()
    cipher = SecretCipher.generate()  # the controllers of one database share its key
    # Crons are checked by the test (run_due), not by the hour-long background interval.
    settings = ForgeSettings(public_url="https://ci.example.test", cron_check_seconds=3600)
    with forge_standin(state) as forge_url:
        async with AsyncExitStack() as stack:
            controllers: list[RunningController] = []
            runners: list[ForgeParts] = []
            for _ in range(2):
                store = await PostgresStore.open(postgres_url, clock)
                stack.push_async_callback(store.aclose)
                app = create_app(
                    store,
                    registration_token=REGISTRATION_TOKEN,
                    admin_token=ADMIN_TOKEN,
                    poll_interval_seconds=1,
                    clock=clock,
                    secrets=cipher,
                    forge=settings,
                )
                controllers.append(await serve_controller(stack, app, clock, 1))
                runners.append(app.state.forge)
            first = controllers[0]
            registration = {
                "name": REPOSITORY,
                "forge": "gitea",
                "url": f"{forge_url}/api/v1",
                "token": "forge-token",
                "webhookSecret": "s",
            }
            assert (await first.api("POST", "/api/v1/repositories", registration)).is_success
            cron = {
                "name": "nightly",
                "repository": REPOSITORY,
                "branch": "main",
                "expression": "* * * * *",
            }
            added = await controllers[1].api("POST", "/api/v1/crons", cron)
            assert added.status_code == 201, added.text
            clock.advance(600)  # ten runs missed while no controller looked
            rounds = [
                parts.crons.run_due()
                for parts in runners
                for _ in range(3)
                if parts.crons is not None
            ]
            built = [b for found in await asyncio.gather(*rounds) for b in found]
            assert len(built) == 1
            builds = (await first.api("GET", "/api/v1/builds")).json()["builds"]
            assert [b["id"] for b in builds] == built
            assert builds[0]["source"]["commit"] == head
            assert builds[0]["source"]["branch"] == "main"
            listed = (await first.api("GET", "/api/v1/crons")).json()["crons"]
            assert listed[0]["lastBuildId"] == built[0]
            worker = first.worker("w1")
            await worker.register()
            tasks = (await worker.poll())["tasksToStart"]
            await worker.started(tasks[0])
            commands = await worker.initial_commands(tasks[0])
            assert commands["environment"]["CIRRUS_CRON"] == "nightly"
