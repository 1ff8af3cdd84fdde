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
from adapters.storage.task_call_rows import (
    CREATED_LEFT,
    STOP,
    TASK_TO_RUN_COLUMNS,
    TASK_TO_RUN_FROM,
    stop_parameters,
    task_to_run_of,
)
from domain.build import TaskStatus
from domain.store import TaskRecord, TaskStop, TaskToRun, WorkerRecord


async def _rows(connection: Connection, query: str, parameters: Sequence[Any]) -> list[DictRow]:
    cursor = connection.cursor(row_factory=dict_row)
    await cursor.execute(query, tuple(parameters))
    return await cursor.fetchall()


def _results_of(table: str) -> str:
    # The command results of each row of ``table`` as one JSON array, in position order: the
    # tasks and their results come in one statement (one snapshot, one round trip).
    return (
        "(SELECT COALESCE(json_agg(json_build_array(c.name, c.status, c.duration_in_nanos, "
        "c.signaled_to_exit) ORDER BY c.position), '[]'::json) "
        f"FROM command_results AS c WHERE c.task_id = {table}.id) AS results"
    )


def _task(row: DictRow) -> TaskRecord:
    results = [
        command_result_from_row(
            {"name": name, "status": status, "duration_in_nanos": nanos, "signaled_to_exit": sig}
        )
        for name, status, nanos, sig in row["results"]
    ]
    return task_from_row(row, results)


async def load_tasks(
    connection: Connection,
    where: str,
    parameters: Sequence[Any],
    order: str = "id",
    limit: int | None = None,
) -> list[TaskRecord]:
    """Return the tasks matching an SQL condition on ``tasks`` (the first ``limit`` if given),
    with their command results, in one statement."""
    query = f"SELECT tasks.*, {_results_of('tasks')} FROM tasks WHERE {where} ORDER BY {order}"
    if limit is not None:
        query, parameters = query + " LIMIT %s", (*parameters, limit)
    return [_task(row) for row in await _rows(connection, query, parameters)]


async def load_task(connection: Connection, key: int) -> TaskRecord | None:
    """Return one task by key."""
    tasks = await load_tasks(connection, "id = %s", (key,))
    return tasks[0] if tasks else None


async def update_task(
    connection: Connection, update: str, parameters: Sequence[Any]
) -> TaskRecord | None:
    """Run ``UPDATE tasks …`` (one row at most) and return the row it changed with its command
    results, in one statement; ``None`` if it changed nothing."""
    rows = await _rows(
        connection,
        f"WITH changed AS ({update} RETURNING *) "
        f"SELECT changed.*, {_results_of('changed')} FROM changed",
        parameters,
    )
    return _task(rows[0]) if rows else None


async def load_task_to_run(connection: Connection, key: int) -> TaskToRun | None:
    """Return one task by key with its command results and its build's environment, in one
    statement."""
    rows = await _rows(
        connection,
        f"SELECT {TASK_TO_RUN_COLUMNS}, {_results_of('tasks')} "
        f"FROM {TASK_TO_RUN_FROM.format(p='%s')}",
        (key,),
    )
    return task_to_run_of(_task(rows[0]), rows[0]["build_environment"]) if rows else None


async def stop_task(
    connection: Connection, key: int, status: TaskStatus, message: str, now: float
) -> TaskStop:
    """Record a claimed task's ``TaskStopped`` once, finalising it with ``status`` and
    ``message`` if needed, and count its build's ``CREATED`` tasks: one statement."""
    # The outer join gives the count even when the update changed no row.
    rows = await _rows(
        connection,
        f"WITH changed AS ({STOP.format(p='%s')} RETURNING *) "
        f"SELECT changed.*, {_results_of('changed')}, "
        f"({CREATED_LEFT.format(p='%s')}) AS created_left "
        "FROM (SELECT 1) AS one LEFT JOIN changed ON TRUE",
        (*stop_parameters(key, status, message, now), key),
    )
    row = rows[0]
    return TaskStop(None if row["id"] is None else _task(row), int(row["created_left"]))


async def load_workers(
    connection: Connection, where: str = "TRUE", parameters: Sequence[Any] = ()
) -> list[WorkerRecord]:
    """Return the workers matching an SQL condition on ``workers``, by name (bytewise)."""
    rows = await _rows(
        connection, f'SELECT * FROM workers WHERE {where} ORDER BY name COLLATE "C"', parameters
    )
    return [worker_from_row(row) for row in rows]
