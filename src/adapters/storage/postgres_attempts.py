"""Re-runs on PostgreSQL: adding new attempts of tasks to a build in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.storage.attempt_rows import (
    INSERT_ATTEMPT,
    RERUN_ALREADY,
    already_rerun,
    insert_parameters,
    rerun_keys,
)
from adapters.storage.postgres_connection import Connection
from adapters.storage.postgres_rows import load_tasks
from domain.rerun import NewAttempt
from domain.store import TaskRecord

_P = "%s"


async def create_attempts(
    connection: Connection, build_key: int, attempts: Sequence[NewAttempt], now: float
) -> list[TaskRecord]:
    """Insert the new attempts (``RerunError`` if one re-run attempt was re-run already).

    The build's row is locked first, so re-runs of one build take turns: under READ COMMITTED
    the second one's check then sees the first one's attempts.
    """
    keys = rerun_keys(list(attempts))
    await connection.execute("SELECT id FROM builds WHERE id = %s FOR UPDATE", (build_key,))
    for attempt, key in zip(attempts, keys, strict=True):
        cursor = await connection.execute(RERUN_ALREADY.format(p=_P), (key,))
        if await cursor.fetchone() is not None:
            raise already_rerun(attempt.rerun_of)
    new_keys = []
    for attempt, key in zip(attempts, keys, strict=True):
        cursor = await connection.execute(
            INSERT_ATTEMPT.format(p=_P) + " RETURNING id",
            insert_parameters(build_key, attempt, key, now),
        )
        row = await cursor.fetchone()
        assert row is not None  # INSERT … RETURNING gives the row it inserted
        new_keys.append(int(row[0]))
    if not new_keys:
        return []
    return await load_tasks(connection, "id = ANY(%s)", (new_keys,), order="position")
