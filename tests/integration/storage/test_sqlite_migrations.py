"""Schema versions of the SQLite store: created, kept, upgraded, and refused when newer."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.storage.schema_versions import Migration, latest_version
from adapters.storage.sqlite_migrations import SQLITE_MIGRATIONS
from adapters.storage.sqlite_store import SqliteStore
from domain.store import SchemaVersionError, StoreError
from tests.integration.storage.conftest import FakeClock

pytestmark = pytest.mark.integration

NEXT = (
    *SQLITE_MIGRATIONS,
    Migration(
        latest_version(SQLITE_MIGRATIONS) + 1,
        "a note on settings",
        ("ALTER TABLE settings ADD COLUMN note TEXT NOT NULL DEFAULT ''",),
    ),
)


def _versions(path: Path) -> list[tuple[int, float]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT version, applied_at FROM schema_version ORDER BY version"
        ).fetchall()
    connection.close()
    return [(int(version), float(applied_at)) for version, applied_at in rows]


async def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = await SqliteStore.open(path, FakeClock(5.0))
    await store.aclose()
    assert _versions(path) == [(m.version, 5.0) for m in SQLITE_MIGRATIONS]


async def test_opening_a_current_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    first = await SqliteStore.open(path, FakeClock(5.0))
    await first.set_setting("k", "v")
    await first.aclose()
    second = await SqliteStore.open(path, FakeClock(9.0))
    try:
        assert await second.get_setting("k") == "v"
    finally:
        await second.aclose()
    assert _versions(path) == [(m.version, 5.0) for m in SQLITE_MIGRATIONS]


async def test_an_older_database_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    old = await SqliteStore.open(path, FakeClock(5.0))
    await old.set_setting("k", "v")
    await old.aclose()
    upgraded = await SqliteStore.open(path, FakeClock(9.0), migrations=NEXT)
    try:
        assert await upgraded.get_setting("k") == "v"
    finally:
        await upgraded.aclose()
    assert _versions(path)[-1] == (NEXT[-1].version, 9.0)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT note FROM settings").fetchone() == ("",)
    connection.close()


async def test_a_database_newer_than_this_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    newer = await SqliteStore.open(path, FakeClock(), migrations=NEXT)
    await newer.aclose()
    with pytest.raises(SchemaVersionError, match=rf"version {NEXT[-1].version}, newer"):
        await SqliteStore.open(path, FakeClock())


async def test_migrations_out_of_order_are_a_programming_error(tmp_path: Path) -> None:
    gap = (*SQLITE_MIGRATIONS, Migration(latest_version(SQLITE_MIGRATIONS) + 2, "gap", ()))
    with pytest.raises(ValueError, match="in order"):
        await SqliteStore.open(tmp_path / "c.db", FakeClock(), migrations=gap)


async def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    broken = (
        *SQLITE_MIGRATIONS,
        Migration(latest_version(SQLITE_MIGRATIONS) + 1, "broken", ("NOT SQL",)),
    )
    with pytest.raises(StoreError, match="syntax error"):
        await SqliteStore.open(path, FakeClock(), migrations=broken)
    assert [version for version, _ in _versions(path)] == [m.version for m in SQLITE_MIGRATIONS]


def _open_and_close(path: Path) -> None:
    async def run() -> None:
        store = await SqliteStore.open(path, FakeClock(), migrations=NEXT)
        await store.aclose()

    asyncio.run(run())


async def test_stores_opening_a_new_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(_open_and_close, path) for _ in range(8)]:
            future.result(timeout=60)
    assert [version for version, _ in _versions(path)] == [m.version for m in NEXT]


async def test_an_in_memory_database_works_within_one_store() -> None:
    store = await SqliteStore.open(":memory:", FakeClock())
    try:
        await store.set_setting("k", "v")
        assert await store.get_setting("k") == "v"
    finally:
        await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.get_setting("k")
