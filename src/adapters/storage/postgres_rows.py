"""Reading records out of the PostgreSQL store's rows: tasks with their command results, workers.

Functions here run inside a transaction the caller opened (see ``postgres_connection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import DictRow, dict_row

from adapters.storage.postgres_connection import Connection
from adapters.storage.spec_json import (
    loads_float_map,
    loads_str_list,
    loads_str_map,
    loads_task_spec,
)
from domain.build import TaskStatus
from domain.protocol import CommandResult, CommandStatus
from domain.store import StoreError, TaskRecord, WorkerRecord


def _status(value: str) -> TaskStatus:
    try:
        return TaskStatus(value)
    except ValueError as error:
        raise StoreError(f"stored task status {value!r} is unknown") from error


def _command_result(row: DictRow) -> CommandResult:
    try:
        status = CommandStatus[row["status"]]
    except KeyError as error:
        raise StoreError(f"stored command status {row['status']!r} is unknown") from error
    return CommandResult(
        name=row["name"],
        status=status,
        duration_in_nanos=int(row["duration_in_nanos"]),
        signaled_to_exit=bool(row["signaled_to_exit"]),
    )


async def _rows(connection: Connection, query: str, parameters: Sequence[Any]) -> list[DictRow]:
    cursor = connection.cursor(row_factory=dict_row)
    await cursor.execute(query, tuple(parameters))
    return await cursor.fetchall()


async def load_tasks(
    connection: Connection, where: str, parameters: Sequence[Any], order: str = "id"
) -> list[TaskRecord]:
    """Return the tasks matching an SQL condition on ``tasks``, with their command results."""
    rows = await _rows(
        connection, f"SELECT * FROM tasks WHERE {where} ORDER BY {order}", parameters
    )
    if not rows:
        return []
    results: dict[int, list[CommandResult]] = {int(row["id"]): [] for row in rows}
    for result_row in await _rows(
        connection,
        "SELECT * FROM command_results WHERE task_id = ANY(%s) ORDER BY task_id, position",
        (list(results),),
    ):
        results[int(result_row["task_id"])].append(_command_result(result_row))
    return [_task(row, results[int(row["id"])]) for row in rows]


async def load_task(connection: Connection, key: int) -> TaskRecord | None:
    """Return one task by key."""
    tasks = await load_tasks(connection, "id = %s", (key,))
    return tasks[0] if tasks else None


def _task(row: DictRow, results: list[CommandResult]) -> TaskRecord:
    return TaskRecord(
        id=str(row["id"]),
        build_id=str(row["build_id"]),
        name=row["name"],
        status=_status(row["status"]),
        spec=loads_task_spec(row["spec"]),
        sequence=int(row["id"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        worker=row["worker"],
        client_secret=row["client_secret"],
        server_secret=row["server_secret"],
        cancel_requested=bool(row["cancel_requested"]),
        failure_message=row["failure_message"],
        command_results=tuple(results),
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
    )


async def load_workers(
    connection: Connection, where: str = "TRUE", parameters: Sequence[Any] = ()
) -> list[WorkerRecord]:
    """Return the workers matching an SQL condition on ``workers``, by name (bytewise)."""
    rows = await _rows(
        connection, f'SELECT * FROM workers WHERE {where} ORDER BY name COLLATE "C"', parameters
    )
    return [
        WorkerRecord(
            name=row["name"],
            session_token_hash=row["session_token_hash"],
            registered_at=float(row["registered_at"]),
            last_seen=float(row["last_seen"]),
            labels=loads_str_map(row["labels"]),
            resources_total=loads_float_map(row["resources_total"]),
            resources_in_use=loads_float_map(row["resources_in_use"]),
            running_task_ids=loads_str_list(row["running_task_ids"]),
            disabled=bool(row["disabled"]),
        )
        for row in rows
    ]
