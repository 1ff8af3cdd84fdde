"""Reading records out of the PostgreSQL store's rows: tasks with their command results, workers.

Functions here run inside a transaction the caller opened (see ``postgres_connection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import DictRow, dict_row

from adapters.storage.postgres_connection import Connection
from adapters.storage.stored_records import (
    command_result_from_row,
    task_from_row,
    worker_from_row,
)
from domain.protocol import CommandResult
from domain.store import TaskRecord, WorkerRecord


async def _rows(connection: Connection, query: str, parameters: Sequence[Any]) -> list[DictRow]:
    cursor = connection.cursor(row_factory=dict_row)
    await cursor.execute(query, tuple(parameters))
    return await cursor.fetchall()


async def load_tasks(
    connection: Connection,
    where: str,
    parameters: Sequence[Any],
    order: str = "id",
    limit: int | None = None,
) -> list[TaskRecord]:
    """Return the tasks matching an SQL condition on ``tasks`` (the first ``limit`` if given),
    with their command results."""
    query = f"SELECT * FROM tasks WHERE {where} ORDER BY {order}"
    if limit is not None:
        query, parameters = query + " LIMIT %s", (*parameters, limit)
    rows = await _rows(connection, query, parameters)
    if not rows:
        return []
    results: dict[int, list[CommandResult]] = {int(row["id"]): [] for row in rows}
    for result_row in await _rows(
        connection,
        "SELECT * FROM command_results WHERE task_id = ANY(%s) ORDER BY task_id, position",
        (list(results),),
    ):
        results[int(result_row["task_id"])].append(command_result_from_row(result_row))
    return [task_from_row(row, results[int(row["id"])]) for row in rows]


async def load_task(connection: Connection, key: int) -> TaskRecord | None:
    """Return one task by key."""
    tasks = await load_tasks(connection, "id = %s", (key,))
    return tasks[0] if tasks else None


async def load_workers(
    connection: Connection, where: str = "TRUE", parameters: Sequence[Any] = ()
) -> list[WorkerRecord]:
    """Return the workers matching an SQL condition on ``workers``, by name (bytewise)."""
    rows = await _rows(
        connection, f'SELECT * FROM workers WHERE {where} ORDER BY name COLLATE "C"', parameters
    )
    return [worker_from_row(row) for row in rows]
