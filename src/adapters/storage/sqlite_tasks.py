"""Builds and task state changes in SQLite, as functions run inside the store's transactions.

Each guarded change is one ``UPDATE … WHERE <guard>``; its row count says whether the guard
held. Run inside ``BEGIN IMMEDIATE`` (see ``sqlite_connection``), the database itself decides
which of several claimers, possibly in other processes, gets a task.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence

from adapters.storage.spec_json import (
    dumps_source,
    dumps_str_map,
    dumps_task_spec,
    loads_source,
    loads_str_map,
)
from adapters.storage.sqlite_rows import load_task, load_tasks
from adapters.storage.stored_records import FINAL_SQL
from adapters.storage.task_call_rows import CREATED_LEFT, STOP, stop_parameters
from domain.build import BuildSpec, TaskStatus, initial_status
from domain.protocol import CommandResult
from domain.source import BuildSource
from domain.store import (
    BuildRecord,
    NoSuchTaskError,
    TaskRecord,
    TaskStop,
    lost_worker_message,
)

_OCCUPYING = "worker = ? AND stopped_at IS NULL"


def insert_build(
    connection: sqlite3.Connection,
    spec: BuildSpec,
    now: float,
    source: BuildSource | None = None,
    submitted_by: str = "",
) -> int:
    """Insert a build, its source, its submitter and its tasks; return the build's key."""
    cursor = connection.execute(
        "INSERT INTO builds (environment, created_at, source, submitted_by) VALUES (?, ?, ?, ?)",
        (dumps_str_map(spec.environment), now, dumps_source(source), submitted_by),
    )
    build_key = cursor.lastrowid
    assert build_key is not None  # an INSERT into a rowid table always sets it
    for position, task in enumerate(spec.tasks):
        connection.execute(
            "INSERT INTO tasks (build_id, position, name, status, spec, awaiting_trigger, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                build_key,
                position,
                task.name,
                initial_status(task).value,
                dumps_task_spec(task),
                int(task.manual),
                now,
                now,
            ),
        )
    return build_key


def load_build(connection: sqlite3.Connection, key: int) -> BuildRecord | None:
    """Return a build with its tasks in configuration order."""
    row = connection.execute("SELECT * FROM builds WHERE id = ?", (key,)).fetchone()
    if row is None:
        return None
    return BuildRecord(
        id=str(row["id"]),
        environment=loads_str_map(row["environment"]),
        created_at=float(row["created_at"]),
        tasks=tuple(load_tasks(connection, "build_id = ?", (key,), order="position")),
        source=loads_source(row["source"]),
        submitted_by=str(row["submitted_by"]),
    )


def build_keys(
    connection: sqlite3.Connection,
    repository: str,
    branch: str,
    before: int | None,
    limit: int,
    submitted_by: str = "",
) -> list[int]:
    """Return the keys of up to ``limit`` builds, newest first, of a repository, branch and
    submitter (``""``: any) older than ``before`` (``None``: any)."""
    conditions, parameters = ["1"], list[object]()
    for field, value in (("repository", repository), ("branch", branch)):
        if value:
            conditions.append(f"json_extract(source, '$.{field}') = ?")
            parameters.append(value)
    if submitted_by:
        conditions.append("submitted_by = ?")
        parameters.append(submitted_by)
    if before is not None:
        conditions.append("id < ?")
        parameters.append(before)
    rows = connection.execute(
        f"SELECT id FROM builds WHERE {' AND '.join(conditions)} ORDER BY id DESC LIMIT ?",
        (*parameters, limit),
    )
    return [int(row[0]) for row in rows]


def load_build_environment(connection: sqlite3.Connection, key: int) -> dict[str, str] | None:
    """Return a build's submitted environment without its tasks."""
    row = connection.execute("SELECT environment FROM builds WHERE id = ?", (key,)).fetchone()
    return None if row is None else loads_str_map(row["environment"])


def count_build_tasks(connection: sqlite3.Connection, key: int, statuses: Sequence[str]) -> int:
    """Return how many of a build's tasks have one of ``statuses`` (their values)."""
    marks = ", ".join("?" * len(statuses))
    row = connection.execute(
        f"SELECT COUNT(*) FROM tasks WHERE build_id = ? AND status IN ({marks})",
        (key, *statuses),
    ).fetchone()
    assert row is not None  # an aggregate always has one row
    return int(row[0])


def set_status(
    connection: sqlite3.Connection,
    key: int,
    expected: Collection[TaskStatus],
    new: TaskStatus,
    failure_message: str,
    now: float,
) -> bool:
    """Set ``new`` if the status is one of ``expected``; return whether it changed."""
    if not expected:
        return False
    marks = ", ".join("?" * len(expected))
    cursor = connection.execute(
        "UPDATE tasks SET status = ?, updated_at = ?, "
        "failure_message = CASE WHEN ? <> '' THEN ? ELSE failure_message END "
        f"WHERE id = ? AND status IN ({marks})",
        (new.value, now, failure_message, failure_message, key, *(s.value for s in expected)),
    )
    return cursor.rowcount == 1


def trigger(connection: sqlite3.Connection, key: int, now: float) -> TaskRecord | None:
    """Clear a task's ``awaiting_trigger``; return the task (``None`` if there is none)."""
    connection.execute(
        "UPDATE tasks SET awaiting_trigger = 0, updated_at = ? WHERE id = ? AND awaiting_trigger",
        (now, key),
    )
    return load_task(connection, key)


def claim(
    connection: sqlite3.Connection,
    key: int,
    worker_name: str,
    now: float,
    new_secret: Callable[[], str],
) -> TaskRecord | None:
    """Hand a queued task to a worker with fresh secrets; ``None`` if it is not queued."""
    cursor = connection.execute(
        "UPDATE tasks SET status = 'EXECUTING', worker = ?, client_secret = ?, "
        "server_secret = ?, cancel_requested = 0, started_at = NULL, stopped_at = NULL, "
        "updated_at = ? WHERE id = ? AND status = 'SCHEDULED' AND worker IS NULL",
        (worker_name, new_secret(), new_secret(), now, key),
    )
    return load_task(connection, key) if cursor.rowcount == 1 else None


def mark_started(connection: sqlite3.Connection, key: int, now: float) -> bool:
    """Record the first ``TaskStarted`` of a claimed task that is still running."""
    cursor = connection.execute(
        "UPDATE tasks SET started_at = ?, updated_at = ? WHERE id = ? AND status = 'EXECUTING' "
        "AND worker IS NOT NULL AND started_at IS NULL AND stopped_at IS NULL",
        (now, now, key),
    )
    return cursor.rowcount == 1


def record_results(
    connection: sqlite3.Connection,
    key: int,
    task_id: str,
    results: Sequence[CommandResult],
    now: float,
) -> None:
    """Merge command results by name; a new name goes after the known ones."""
    cursor = connection.execute("UPDATE tasks SET updated_at = ? WHERE id = ?", (now, key))
    if cursor.rowcount != 1:
        raise NoSuchTaskError(task_id)
    for result in results:
        connection.execute(
            "INSERT INTO command_results "
            "(task_id, name, position, status, duration_in_nanos, signaled_to_exit) "
            "VALUES (?, ?, (SELECT COALESCE(MAX(position), -1) + 1 FROM command_results "
            "WHERE task_id = ?), ?, ?, ?) "
            "ON CONFLICT (task_id, name) DO UPDATE SET status = excluded.status, "
            "duration_in_nanos = excluded.duration_in_nanos, "
            "signaled_to_exit = excluded.signaled_to_exit",
            (
                key,
                result.name,
                key,
                result.status.name,
                result.duration_in_nanos,
                int(result.signaled_to_exit),
            ),
        )


def finish(
    connection: sqlite3.Connection, key: int, status: TaskStatus, message: str, now: float
) -> bool:
    """Make a task that is not final yet final."""
    if not status.is_final:
        raise ValueError(f"{status.value} is not a final status")
    cursor = connection.execute(
        "UPDATE tasks SET status = ?, updated_at = ?, "
        "failure_message = CASE WHEN ? <> '' THEN ? ELSE failure_message END "
        f"WHERE id = ? AND status NOT IN {FINAL_SQL}",
        (status.value, now, message, message, key),
    )
    return cursor.rowcount == 1


def stop(
    connection: sqlite3.Connection, key: int, status: TaskStatus, message: str, now: float
) -> TaskStop:
    """Record a claimed task's ``TaskStopped`` once, finalising it with ``status`` and
    ``message`` if needed; count its build's ``CREATED`` tasks (one write transaction)."""
    parameters = stop_parameters(key, status, message, now)
    cursor = connection.execute(STOP.format(p="?"), parameters)
    stopped = load_task(connection, key) if cursor.rowcount == 1 else None
    row = connection.execute(CREATED_LEFT.format(p="?"), (key,)).fetchone()
    assert row is not None  # an aggregate always has one row
    return TaskStop(stopped, int(row[0]))


def request_cancel(connection: sqlite3.Connection, key: int, now: float) -> TaskRecord | None:
    """Abort an unclaimed task now, or flag a claimed running one for its worker."""
    connection.execute(
        "UPDATE tasks SET status = 'ABORTED', updated_at = ? "
        "WHERE id = ? AND worker IS NULL AND status IN ('CREATED', 'SCHEDULED')",
        (now, key),
    )
    connection.execute(
        "UPDATE tasks SET cancel_requested = 1, updated_at = ? WHERE id = ? "
        f"AND worker IS NOT NULL AND stopped_at IS NULL AND cancel_requested = 0 "
        f"AND status NOT IN {FINAL_SQL}",
        (now, key),
    )
    return load_task(connection, key)


def tasks_to_stop(connection: sqlite3.Connection, worker_name: str) -> list[str]:
    """Return ids of a worker's occupying tasks that were asked to cancel."""
    rows = connection.execute(
        f"SELECT id FROM tasks WHERE {_OCCUPYING} AND cancel_requested = 1 ORDER BY id",
        (worker_name,),
    )
    return [str(row[0]) for row in rows]


def release_worker(
    connection: sqlite3.Connection, worker_name: str, now: float
) -> list[TaskRecord]:
    """Take every occupying task from a lost worker (see ``ControllerStore.release_worker``)."""
    keys = [
        int(row[0])
        for row in connection.execute(
            f"SELECT id FROM tasks WHERE {_OCCUPYING} ORDER BY id", (worker_name,)
        )
    ]
    if not keys:
        return []
    # Order matters: each statement only sees the rows the previous ones left occupying.
    connection.execute(
        "UPDATE tasks SET status = 'SCHEDULED', worker = NULL, client_secret = '', "
        f"server_secret = '', updated_at = ? WHERE {_OCCUPYING} AND status = 'EXECUTING' "
        "AND started_at IS NULL AND cancel_requested = 0",
        (now, worker_name),
    )
    connection.execute(
        f"UPDATE tasks SET status = 'ABORTED', stopped_at = ?, updated_at = ? WHERE {_OCCUPYING} "
        f"AND cancel_requested = 1 AND status NOT IN {FINAL_SQL}",
        (now, now, worker_name),
    )
    connection.execute(
        "UPDATE tasks SET status = 'FAILED', failure_message = ?, stopped_at = ?, updated_at = ? "
        f"WHERE {_OCCUPYING} AND status NOT IN {FINAL_SQL}",
        (lost_worker_message(worker_name), now, now, worker_name),
    )
    connection.execute(
        f"UPDATE tasks SET stopped_at = ?, updated_at = ? WHERE {_OCCUPYING}",
        (now, now, worker_name),
    )
    marks = ", ".join("?" * len(keys))
    return load_tasks(connection, f"id IN ({marks})", keys)
