"""The PostgreSQL pool recovers from connections the server dropped (restart, idle timeout)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from adapters.storage.postgres_store import PostgresStore
from tests.integration.storage.conftest import FakeClock

pytestmark = pytest.mark.integration


async def _terminate_other_sessions(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()) AS killed"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def test_every_pooled_connection_dropped_by_the_server_is_replaced(
    postgres_url: str,
) -> None:
    store = await PostgresStore.open(postgres_url, FakeClock(), max_connections=3)
    try:
        await store.set_setting("k", "v")
        # Fill the pool: reads at once each hold a connection.
        await asyncio.gather(*(store.list_workers() for _ in range(6)))
        assert await _terminate_other_sessions(postgres_url) >= 2
        # Reads and writes go on as if nothing happened: the dead connections are discarded.
        assert await asyncio.gather(*(store.get_setting("k") for _ in range(3))) == ["v"] * 3
        await store.set_setting("k", "w")
        assert await store.get_setting("k") == "w"
    finally:
        await store.aclose()
