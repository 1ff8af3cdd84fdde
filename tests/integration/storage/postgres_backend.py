"""The PostgreSQL backend of the store contract tests: a scratch database on the session's cluster.

Picklable (it holds only the database's URL), so the multi-process tests can send it to their
child processes, which open stores on the same database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.storage.postgres_store import PostgresStore
from domain.ports import Clock
from domain.store import ControllerStore
from tests.integration.postgres_server import shared_server


class PostgresBackend:
    """A fresh database on the private cluster, dropped after the test."""

    name = "postgresql"

    def __init__(self, directory: Path) -> None:
        del directory  # the database lives in the cluster, not in the test's directory
        self.url = shared_server().create_database()

    async def open(self, clock: Clock) -> ControllerStore:
        """Open a new store (a new pool) on the database."""
        return await PostgresStore.open(self.url, clock)

    async def dispose(self) -> None:
        """Drop the database (stores are closed by then)."""
        await asyncio.to_thread(shared_server().drop_database, self.url)
