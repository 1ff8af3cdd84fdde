"""Schema versions of the PostgreSQL store: created, kept, upgraded, refused, and raced for."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier as ProcessBarrier

import psycopg
import pytest

from adapters.storage.postgres_migrations import POSTGRES_MIGRATIONS
from adapters.storage.postgres_store import PostgresStore
from adapters.storage.schema_versions import Migration, latest_version
from adapters.storage.sqlite_migrations import SQLITE_MIGRATIONS
from domain.store import SchemaVersionError, StoreError
from tests.integration.storage.conftest import FakeClock

pytestmark = pytest.mark.integration

NEXT = (
    *POSTGRES_MIGRATIONS,
    Migration(
        latest_version(POSTGRES_MIGRATIONS) + 1,
        "a note on settings",
        ("ALTER TABLE settings ADD COLUMN note TEXT NOT NULL DEFAULT ''",),
    ),
)
OPENERS = 8
DEADLINE_SECONDS = 60.0


@pytest.fixture
def url(postgres_url: str) -> str:
    """A fresh empty database on the session's private cluster."""
    return postgres_url


def _query(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(query).fetchall()


def _versions(url: str) -> list[tuple[object, ...]]:
    return _query(url, "SELECT version, applied_at FROM schema_version ORDER BY version")


def test_both_stores_have_the_same_schema_versions() -> None:
    assert [(m.version, m.description) for m in POSTGRES_MIGRATIONS] == [
        (m.version, m.description) for m in SQLITE_MIGRATIONS
    ]


async def test_a_new_database_gets_every_migration_once(url: str) -> None:
    store = await PostgresStore.open(url, FakeClock(5.0))
    await store.aclose()
    assert _versions(url) == [(m.version, 5.0) for m in POSTGRES_MIGRATIONS]


async def test_opening_a_current_database_changes_nothing(url: str) -> None:
    first = await PostgresStore.open(url, FakeClock(5.0))
    await first.set_setting("k", "v")
    await first.aclose()
    second = await PostgresStore.open(url, FakeClock(9.0))
    try:
        assert await second.get_setting("k") == "v"
    finally:
        await second.aclose()
    assert _versions(url) == [(m.version, 5.0) for m in POSTGRES_MIGRATIONS]


async def test_an_older_database_is_upgraded_and_keeps_its_data(url: str) -> None:
    old = await PostgresStore.open(url, FakeClock(5.0))
    await old.set_setting("k", "v")
    await old.aclose()
    upgraded = await PostgresStore.open(url, FakeClock(9.0), migrations=NEXT)
    try:
        assert await upgraded.get_setting("k") == "v"
    finally:
        await upgraded.aclose()
    assert _versions(url)[-1] == (NEXT[-1].version, 9.0)
    assert _query(url, "SELECT key, note FROM settings") == [("k", "")]


async def test_a_database_newer_than_this_program_is_refused(url: str) -> None:
    newer = await PostgresStore.open(url, FakeClock(), migrations=NEXT)
    await newer.aclose()
    with pytest.raises(SchemaVersionError, match=rf"version {NEXT[-1].version}, newer"):
        await PostgresStore.open(url, FakeClock())


async def test_migrations_out_of_order_are_a_programming_error(url: str) -> None:
    gap = (*POSTGRES_MIGRATIONS, Migration(latest_version(POSTGRES_MIGRATIONS) + 2, "gap", ()))
    with pytest.raises(ValueError, match="in order"):
        await PostgresStore.open(url, FakeClock(), migrations=gap)


async def test_a_failing_migration_is_undone_whole_and_leaves_the_previous_version(
    url: str,
) -> None:
    broken = (
        *POSTGRES_MIGRATIONS,
        Migration(
            latest_version(POSTGRES_MIGRATIONS) + 1,
            "broken halfway",
            ("CREATE TABLE half_done (x INTEGER)", "NOT SQL"),
        ),
    )
    with pytest.raises(StoreError, match="syntax error"):
        await PostgresStore.open(url, FakeClock(), migrations=broken)
    assert [version for version, _ in _versions(url)] == [m.version for m in POSTGRES_MIGRATIONS]
    assert _query(url, "SELECT to_regclass('half_done') IS NULL") == [(True,)]


def _open_and_close(url: str, wait: threading.Barrier | ProcessBarrier) -> None:
    async def run() -> None:
        await asyncio.to_thread(wait.wait, DEADLINE_SECONDS)
        store = await PostgresStore.open(url, FakeClock(), migrations=NEXT)
        await store.aclose()

    asyncio.run(run())


async def test_stores_opening_a_new_database_at_once_migrate_it_once(url: str) -> None:
    barrier = threading.Barrier(OPENERS)
    with ThreadPoolExecutor(max_workers=OPENERS) as pool:
        for future in [pool.submit(_open_and_close, url, barrier) for _ in range(OPENERS)]:
            future.result(timeout=DEADLINE_SECONDS)
    assert [version for version, _ in _versions(url)] == [m.version for m in NEXT]


async def test_controller_processes_opening_a_new_database_at_once_migrate_it_once(
    url: str,
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(OPENERS)
    processes = [
        context.Process(target=_open_and_close, args=(url, barrier), daemon=True)
        for _ in range(OPENERS)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            await asyncio.to_thread(process.join, DEADLINE_SECONDS)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    assert [version for version, _ in _versions(url)] == [m.version for m in NEXT]


async def test_a_closed_store_refuses_every_call(url: str) -> None:
    store = await PostgresStore.open(url, FakeClock())
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.get_setting("k")
    with pytest.raises(StoreError, match="closed"):
        await store.set_setting("k", "v")
