"""The forge tables on PostgreSQL: ``forge_tables.SqlSteps`` on a ``PostgresStore``'s pool.

A guarded step is an ``UPDATE ... WHERE column = old value``: under READ COMMITTED the second
of two controllers waits for the first's commit, re-reads the row and matches nothing, so one
cron run or one outbox row is claimed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.storage.forge_tables import ForgeTables, Step
from adapters.storage.postgres_connection import Connection, PostgresDatabase
from domain.ports import Clock


class PostgresSteps:
    """Runs the forge tables' statements on PostgreSQL (placeholder ``%s``)."""

    placeholder = "%s"

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def query(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Return the rows of one ``SELECT``."""

        async def read(db: Connection) -> list[tuple[Any, ...]]:
            cursor = await db.execute(sql, tuple(parameters))
            return [tuple(row) for row in await cursor.fetchall()]

        return await self._db.read_statement(read)

    async def change(self, steps: Sequence[Step], *, guarded: bool) -> int:
        """Run ``steps`` in one write transaction (see ``SqlSteps``)."""

        async def run(db: Connection) -> int:
            first = -1
            for sql, parameters in steps:
                count = (await db.execute(sql, tuple(parameters))).rowcount
                if first == -1:
                    first = count
                    if guarded and count != 1:
                        break
            return max(first, 0)

        return await self._db.write(run)


def postgres_forge_tables(database: PostgresDatabase, clock: Clock) -> ForgeTables:
    """Return the forge tables of a PostgreSQL store's database."""
    return ForgeTables(PostgresSteps(database), clock)
