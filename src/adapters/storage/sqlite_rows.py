"""Reading records out of the SQLite store's rows: tasks with their command results, workers.

Functions here run on the store's database thread inside a transaction the caller opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from adapters.storage.spec_json import (
    loads_float_map,
    loads_str_list,
    loads_str_map,
    loads_task_spec,
)
from domain.build import FINAL_STATUSES, TaskStatus
from domain.protocol import CommandResult, CommandStatus
from domain.store import StoreError, TaskRecord, WorkerRecord

_MAX_ID = 2**63 - 1

FINAL_SQL = "(" + ", ".join(f"'{status.value}'" for status in sorted(FINAL_STATUSES)) + ")"
"""The final statuses as an SQL list, for ``status IN …`` guards."""


def row_key(text: str) -> int | None:
    """Return the integer key of an id, or ``None`` if no row can have that id."""
    if not (text.isascii() and text.isdecimal()):
        return None
    key = int(text)
    return key if 0 < key <= _MAX_ID else None


def _status(value: str) -> TaskStatus:
    try:
        return TaskStatus(value)
    except ValueError as error:
        raise StoreError(f"stored task status {value!r} is unknown") from error


def _command_result(row: sqlite3.Row) -> CommandResult:
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


def load_tasks(
    connection: sqlite3.Connection, where: str, parameters: Sequence[object], order: str = "id"
) -> list[TaskRecord]:
    """Return the tasks matching an SQL condition on ``tasks``, with their command results."""
    rows = connection.execute(
        f"SELECT * FROM tasks WHERE {where} ORDER BY {order}", tuple(parameters)
    ).fetchall()
    if not rows:
        return []
    results: dict[int, list[CommandResult]] = {int(row["id"]): [] for row in rows}
    keys = ", ".join("?" * len(results))
    for result_row in connection.execute(
        f"SELECT * FROM command_results WHERE task_id IN ({keys}) ORDER BY task_id, position",
        tuple(results),
    ):
        results[int(result_row["task_id"])].append(_command_result(result_row))
    return [_task(row, results[int(row["id"])]) for row in rows]


def load_task(connection: sqlite3.Connection, key: int) -> TaskRecord | None:
    """Return one task by key."""
    tasks = load_tasks(connection, "id = ?", (key,))
    return tasks[0] if tasks else None


def _task(row: sqlite3.Row, results: list[CommandResult]) -> TaskRecord:
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


def load_workers(
    connection: sqlite3.Connection, where: str = "1", parameters: Sequence[object] = ()
) -> list[WorkerRecord]:
    """Return the workers matching an SQL condition on ``workers``, by name."""
    rows = connection.execute(
        f"SELECT * FROM workers WHERE {where} ORDER BY name", tuple(parameters)
    ).fetchall()
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
