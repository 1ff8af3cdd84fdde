"""Reading records out of the SQLite store's rows: tasks with their command results, workers.

Functions here run on the store's database thread inside a transaction the caller opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from adapters.storage.stored_records import (
    command_result_from_row,
    task_from_row,
    worker_from_row,
)
from adapters.storage.task_call_rows import TASK_TO_RUN_COLUMNS, TASK_TO_RUN_FROM, task_to_run_of
from domain.protocol import CommandResult
from domain.store import TaskRecord, TaskToRun, WorkerRecord


def load_tasks(
    connection: sqlite3.Connection,
    where: str,
    parameters: Sequence[object],
    order: str = "id",
    limit: int | None = None,
) -> list[TaskRecord]:
    """Return the tasks matching an SQL condition on ``tasks`` (the first ``limit`` if given),
    with their command results."""
    query = f"SELECT * FROM tasks WHERE {where} ORDER BY {order}"
    if limit is not None:
        query, parameters = query + " LIMIT ?", (*parameters, limit)
    rows = connection.execute(query, tuple(parameters)).fetchall()
    if not rows:
        return []
    results: dict[int, list[CommandResult]] = {int(row["id"]): [] for row in rows}
    keys = ", ".join("?" * len(results))
    for result_row in connection.execute(
        f"SELECT * FROM command_results WHERE task_id IN ({keys}) ORDER BY task_id, position",
        tuple(results),
    ):
        results[int(result_row["task_id"])].append(command_result_from_row(result_row))
    return [task_from_row(row, results[int(row["id"])]) for row in rows]


def load_task(connection: sqlite3.Connection, key: int) -> TaskRecord | None:
    """Return one task by key."""
    tasks = load_tasks(connection, "id = ?", (key,))
    return tasks[0] if tasks else None


def load_task_to_run(connection: sqlite3.Connection, key: int) -> TaskToRun | None:
    """Return one task by key with its build's environment."""
    row = connection.execute(
        f"SELECT {TASK_TO_RUN_COLUMNS} FROM {TASK_TO_RUN_FROM.format(p='?')}", (key,)
    ).fetchone()
    if row is None:
        return None
    results = connection.execute(
        "SELECT * FROM command_results WHERE task_id = ? ORDER BY position", (key,)
    )
    task = task_from_row(row, [command_result_from_row(result) for result in results])
    return task_to_run_of(task, row["build_environment"])


def load_workers(
    connection: sqlite3.Connection, where: str = "1", parameters: Sequence[object] = ()
) -> list[WorkerRecord]:
    """Return the workers matching an SQL condition on ``workers``, by name."""
    rows = connection.execute(
        f"SELECT * FROM workers WHERE {where} ORDER BY name", tuple(parameters)
    ).fetchall()
    return [worker_from_row(row) for row in rows]
