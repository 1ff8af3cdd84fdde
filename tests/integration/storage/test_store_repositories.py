"""The registry of repositories: one contract, run on SQLite, on PostgreSQL and in memory."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.storage.memory_repositories import MemoryRepositories
from domain.repositories import Forge, HasRepositories, Repository, RepositoryStore
from domain.store import ControllerStore
from tests.integration.storage.conftest import BACKENDS, FakeClock, StoreBackend

pytestmark = pytest.mark.integration

ACME = Repository(
    name="Acme/App",
    forge=Forge.GITHUB,
    api_url="https://api.github.com",
    clone_url="https://github.com/Acme/App.git",
    encrypted_token="ENCRYPTED[v1:token-one]",
    encrypted_webhook_secret="ENCRYPTED[v1:secret-one]",
)


def registry_of(store: ControllerStore) -> RepositoryStore:
    """The registry on a store's database."""
    assert isinstance(store, HasRepositories)
    return store.repositories()


@pytest.fixture(params=["memory", *sorted(BACKENDS)])
async def repositories(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[RepositoryStore]:
    """A fresh registry of each kind."""
    if request.param == "memory":
        yield MemoryRepositories(clock)
        return
    backend = BACKENDS[str(request.param)](tmp_path)
    store = await backend.open(clock)
    try:
        yield registry_of(store)
    finally:
        await store.aclose()
        await backend.dispose()


async def test_a_new_repository_is_created_now_and_found_under_any_case(
    repositories: RepositoryStore, clock: FakeClock
) -> None:
    saved = await repositories.save_repository(ACME, replace_webhook_secret=False)
    assert saved.created
    expected = dataclasses.replace(ACME, created_at=clock.time, updated_at=clock.time)
    assert saved.repository == expected
    assert await repositories.get_repository("acme/APP") == expected
    assert await repositories.get_repository("acme/other") is None


async def test_saving_it_again_updates_it_and_keeps_its_creation_and_webhook_secret(
    repositories: RepositoryStore, clock: FakeClock
) -> None:
    created = await repositories.save_repository(ACME, replace_webhook_secret=False)
    clock.advance(60)
    changed = dataclasses.replace(
        ACME,
        name="acme/app",
        forge=Forge.GITEA,
        api_url="https://gitea.example/api/v1",
        clone_url="https://gitea.example/acme/app.git",
        encrypted_token="ENCRYPTED[v1:token-two]",
        encrypted_webhook_secret="ENCRYPTED[v1:secret-two]",
    )
    saved = await repositories.save_repository(changed, replace_webhook_secret=False)
    assert not saved.created
    assert saved.repository == dataclasses.replace(
        changed,
        encrypted_webhook_secret="ENCRYPTED[v1:secret-one]",
        created_at=created.repository.created_at,
        updated_at=clock.time,
    )
    replaced = await repositories.save_repository(changed, replace_webhook_secret=True)
    assert replaced.repository.encrypted_webhook_secret == "ENCRYPTED[v1:secret-two]"
    assert [r.name for r in await repositories.list_repositories()] == ["acme/app"]


async def test_a_known_default_branch_stays_until_another_is_given(
    repositories: RepositoryStore,
) -> None:
    await repositories.save_repository(
        dataclasses.replace(ACME, default_branch="main"), replace_webhook_secret=False
    )
    kept = await repositories.save_repository(ACME, replace_webhook_secret=False)
    assert kept.repository.default_branch == "main"
    renamed = await repositories.save_repository(
        dataclasses.replace(ACME, default_branch="trunk"), replace_webhook_secret=False
    )
    assert renamed.repository.default_branch == "trunk"


async def test_the_list_is_ordered_by_name_whatever_the_case(
    repositories: RepositoryStore,
) -> None:
    for name in ("zeta/app", "Beta/app", "alpha/app"):
        await repositories.save_repository(
            dataclasses.replace(ACME, name=name), replace_webhook_secret=False
        )
    assert [r.name for r in await repositories.list_repositories()] == [
        "alpha/app",
        "Beta/app",
        "zeta/app",
    ]


async def test_a_repository_outlives_its_store_and_two_stores_adding_it_create_it_once(
    backend: StoreBackend, clock: FakeClock
) -> None:
    first, second = await backend.open(clock), await backend.open(clock)
    try:
        saves = await asyncio.gather(
            registry_of(first).save_repository(ACME, replace_webhook_secret=False),
            registry_of(second).save_repository(ACME, replace_webhook_secret=False),
        )
    finally:
        await first.aclose()
        await second.aclose()
    assert sorted(saved.created for saved in saves) == [False, True]
    reopened = await backend.open(clock)
    try:
        found = await registry_of(reopened).get_repository("acme/app")
    finally:
        await reopened.aclose()
    assert found is not None
    assert found.encrypted_token == ACME.encrypted_token
