"""The forge tables on SQLite: ``forge_tables.SqlSteps`` on a ``SqliteStore``'s connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from adapters.storage.forge_tables import ForgeTables, Step
from adapters.storage.sqlite_connection import SqliteConnection
from domain.ports import Clock


class SqliteSteps:
    """Runs the forge tables' statements on SQLite (placeholder ``?``)."""

    placeholder = "?"

    def __init__(self, connection: SqliteConnection) -> None:
        self._db = connection

    async def query(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Return the rows of one ``SELECT``."""
        return await self._db.read(
            lambda db: [tuple(row) for row in db.execute(sql, tuple(parameters))]
        )

    async def change(self, steps: Sequence[Step], *, guarded: bool) -> int:
        """Run ``steps`` in one write transaction (see ``SqlSteps``)."""

        def run(db: sqlite3.Connection) -> int:
            first = -1
            for sql, parameters in steps:
                count = db.execute(sql, tuple(parameters)).rowcount
                if first == -1:
                    first = count
                    if guarded and count != 1:
                        break
            return max(first, 0)

        return await self._db.write(run)


def sqlite_forge_tables(connection: SqliteConnection, clock: Clock) -> ForgeTables:
    """Return the forge tables of a SQLite store's database."""
    return ForgeTables(SqliteSteps(connection), clock)
