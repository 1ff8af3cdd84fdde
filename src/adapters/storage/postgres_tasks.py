"""Builds and task state changes in PostgreSQL, as functions run inside the store's transactions.

Each guarded change is one ``UPDATE … WHERE <guard>``; its row count says whether the guard
held. Under ``READ COMMITTED`` an ``UPDATE`` that waited for a concurrent writer evaluates its
guard again on the row that writer left, so the guard decides alone, across connections and
processes, which of several claimers gets a task. Changes that read before they write lock the
rows first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from adapters.storage.postgres_connection import Connection
from adapters.storage.postgres_rows import load_task, load_tasks, update_task
from adapters.storage.spec_json import (
    dumps_source,
    dumps_str_map,
    dumps_task_spec,
    loads_source,
    loads_str_map,
)
from adapters.storage.stored_records import FINAL_SQL
from domain.build import BuildSpec, TaskStatus, initial_status
from domain.protocol import CommandResult
from domain.source import BuildSource
from domain.store import BuildRecord, NoSuchTaskError, TaskRecord, lost_worker_message

_OCCUPYING = "worker = %s AND stopped_at IS NULL"


async def insert_build(
    connection: Connection,
    spec: BuildSpec,
    now: float,
    source: BuildSource | None = None,
    submitted_by: str = "",
) -> int:
    """Insert a build, its source, its submitter and its tasks; return the build's key."""
    cursor = await connection.execute(
        "INSERT INTO builds (environment, created_at, source, submitted_by) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (dumps_str_map(spec.environment), now, dumps_source(source), submitted_by),
    )
    row = await cursor.fetchone()
    assert row is not None  # INSERT … RETURNING gives the row it inserted
    build_key = int(row[0])
    if spec.tasks:
        # In position order, so that ids (the FIFO sequence) follow the configuration.
        await cursor.executemany(
            "INSERT INTO tasks (build_id, position, name, status, spec, awaiting_trigger, "
            "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    build_key,
                    position,
                    task.name,
                    initial_status(task).value,
                    dumps_task_spec(task),
                    task.manual,
                    now,
                    now,
                )
                for position, task in enumerate(spec.tasks)
            ],
        )
    return build_key


async def load_build(connection: Connection, key: int) -> BuildRecord | None:
    """Return a build with its tasks in configuration order."""
    cursor = await connection.execute(
        "SELECT id, environment, created_at, source, submitted_by FROM builds WHERE id = %s",
        (key,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return BuildRecord(
        id=str(row[0]),
        environment=loads_str_map(row[1]),
        created_at=float(row[2]),
        tasks=tuple(await load_tasks(connection, "build_id = %s", (key,), order="position")),
        source=loads_source(row[3]),
        submitted_by=str(row[4]),
    )


async def build_keys(
    connection: Connection,
    repository: str,
    branch: str,
    before: int | None,
    limit: int,
    submitted_by: str = "",
) -> list[int]:
    """Return the keys of up to ``limit`` builds, newest first, of a repository, branch and
    submitter (``""``: any) older than ``before`` (``None``: any)."""
    conditions, parameters = ["TRUE"], list[object]()
    for field, value in (("repository", repository), ("branch", branch)):
        if value:
            conditions.append(f"(source::jsonb ->> '{field}') = %s")
            parameters.append(value)
    if submitted_by:
        conditions.append("submitted_by = %s")
        parameters.append(submitted_by)
    if before is not None:
        conditions.append("id < %s")
        parameters.append(before)
    cursor = await connection.execute(
        f"SELECT id FROM builds WHERE {' AND '.join(conditions)} ORDER BY id DESC LIMIT %s",
        (*parameters, limit),
    )
    return [int(row[0]) for row in await cursor.fetchall()]


async def load_build_environment(connection: Connection, key: int) -> dict[str, str] | None:
    """Return a build's submitted environment without its tasks."""
    cursor = await connection.execute("SELECT environment FROM builds WHERE id = %s", (key,))
    row = await cursor.fetchone()
    return None if row is None else loads_str_map(row[0])


async def count_build_tasks(connection: Connection, key: int, statuses: Sequence[str]) -> int:
    """Return how many of a build's tasks have one of ``statuses`` (their values)."""
    cursor = await connection.execute(
        "SELECT COUNT(*) FROM tasks WHERE build_id = %s AND status = ANY(%s)", (key, statuses)
    )
    row = await cursor.fetchone()
    assert row is not None  # an aggregate always has one row
    return int(row[0])


async def set_status(
    connection: Connection,
    key: int,
    expected: Collection[TaskStatus],
    new: TaskStatus,
    failure_message: str,
    now: float,
) -> bool:
    """Set ``new`` if the status is one of ``expected``; return whether it changed."""
    if not expected:
        return False
    cursor = await connection.execute(
        "UPDATE tasks SET status = %s, updated_at = %s, "
        "failure_message = CASE WHEN %s <> '' THEN %s ELSE failure_message END "
        "WHERE id = %s AND status = ANY(%s)",
        (new.value, now, failure_message, failure_message, key, [s.value for s in expected]),
    )
    return cursor.rowcount == 1


async def claim(
    connection: Connection,
    key: int,
    worker_name: str,
    now: float,
    new_secret: Callable[[], str],
) -> TaskRecord | None:
    """Hand a queued task to a worker with fresh secrets; ``None`` if it is not queued.

    One statement: it may run outside a transaction block.
    """
    return await update_task(
        connection,
        "UPDATE tasks SET status = 'EXECUTING', worker = %s, client_secret = %s, "
        "server_secret = %s, cancel_requested = FALSE, started_at = NULL, stopped_at = NULL, "
        "updated_at = %s WHERE id = %s AND status = 'SCHEDULED' AND worker IS NULL",
        (worker_name, new_secret(), new_secret(), now, key),
    )


async def mark_started(connection: Connection, key: int, now: float) -> bool:
    """Record the first ``TaskStarted`` of a claimed task that is still running."""
    cursor = await connection.execute(
        "UPDATE tasks SET started_at = %s, updated_at = %s WHERE id = %s "
        "AND status = 'EXECUTING' AND worker IS NOT NULL AND started_at IS NULL "
        "AND stopped_at IS NULL",
        (now, now, key),
    )
    return cursor.rowcount == 1


async def record_results(
    connection: Connection,
    key: int,
    task_id: str,
    results: Sequence[CommandResult],
    now: float,
) -> None:
    """Merge command results by name; a new name goes after the known ones, in given order.

    One statement: it may run outside a transaction block. Its ``UPDATE`` locks the task's row,
    but the positions come from the statement's snapshot, so two merges of different new names
    into one task at the same instant could share a position; a worker sends one task's reports
    one after another, so this does not happen in practice (and would only tie their order).
    """
    merged: dict[str, CommandResult] = {}
    for result in results:
        merged[result.name] = result  # a later result replaces an earlier one, in place
    given = list(merged.values())
    cursor = await connection.execute(
        "WITH task AS (UPDATE tasks SET updated_at = %s WHERE id = %s RETURNING id), "
        "known AS (SELECT COALESCE(MAX(position), -1) AS last FROM command_results "
        "WHERE task_id = %s), "
        "merged AS (INSERT INTO command_results "
        "(task_id, name, position, status, duration_in_nanos, signaled_to_exit) "
        "SELECT task.id, given.name, known.last + given.ordinal, given.status, given.nanos, "
        "given.signaled FROM task, known, "
        "unnest(%s::text[], %s::text[], %s::bigint[], %s::boolean[]) "
        "WITH ORDINALITY AS given(name, status, nanos, signaled, ordinal) "
        "ON CONFLICT (task_id, name) DO UPDATE SET status = excluded.status, "
        "duration_in_nanos = excluded.duration_in_nanos, "
        "signaled_to_exit = excluded.signaled_to_exit RETURNING 1) "
        "SELECT COUNT(*) FROM task",
        (
            now,
            key,
            key,
            [result.name for result in given],
            [result.status.name for result in given],
            [result.duration_in_nanos for result in given],
            [result.signaled_to_exit for result in given],
        ),
    )
    row = await cursor.fetchone()
    if row is None or row[0] != 1:
        raise NoSuchTaskError(task_id)


async def finish(
    connection: Connection, key: int, status: TaskStatus, message: str, now: float
) -> bool:
    """Make a task that is not final yet final."""
    if not status.is_final:
        raise ValueError(f"{status.value} is not a final status")
    cursor = await connection.execute(
        "UPDATE tasks SET status = %s, updated_at = %s, "
        "failure_message = CASE WHEN %s <> '' THEN %s ELSE failure_message END "
        f"WHERE id = %s AND status NOT IN {FINAL_SQL}",
        (status.value, now, message, message, key),
    )
    return cursor.rowcount == 1


async def trigger(connection: Connection, key: int, now: float) -> TaskRecord | None:
    """Clear a task's ``awaiting_trigger``; return the task (``None`` if there is none)."""
    await connection.execute(
        "UPDATE tasks SET awaiting_trigger = FALSE, updated_at = %s "
        "WHERE id = %s AND awaiting_trigger",
        (now, key),
    )
    return await load_task(connection, key)


async def request_cancel(connection: Connection, key: int, now: float) -> TaskRecord | None:
    """Abort an unclaimed task now, or flag a claimed running one for its worker."""
    # The first UPDATE locks the row whether or not it changes it; a claim racing with it
    # either happened before (the second UPDATE then flags it) or finds the task ABORTED.
    await connection.execute(
        "UPDATE tasks SET status = 'ABORTED', updated_at = %s "
        "WHERE id = %s AND worker IS NULL AND status IN ('CREATED', 'SCHEDULED')",
        (now, key),
    )
    await connection.execute(
        "UPDATE tasks SET cancel_requested = TRUE, updated_at = %s WHERE id = %s "
        "AND worker IS NOT NULL AND stopped_at IS NULL AND NOT cancel_requested "
        f"AND status NOT IN {FINAL_SQL}",
        (now, key),
    )
    return await load_task(connection, key)


async def tasks_to_stop(connection: Connection, worker_name: str) -> list[str]:
    """Return ids of a worker's occupying tasks that were asked to cancel."""
    cursor = await connection.execute(
        f"SELECT id FROM tasks WHERE {_OCCUPYING} AND cancel_requested ORDER BY id",
        (worker_name,),
    )
    return [str(row[0]) for row in await cursor.fetchall()]


async def release_worker(connection: Connection, worker_name: str, now: float) -> list[TaskRecord]:
    """Take every occupying task from a lost worker (see ``ControllerStore.release_worker``)."""
    # Lock the worker's rows first, in id order (as every multi-row lock here, so two releases
    # cannot deadlock); a row another transaction stopped meanwhile drops out of the set.
    cursor = await connection.execute(
        f"SELECT id FROM tasks WHERE {_OCCUPYING} ORDER BY id FOR UPDATE", (worker_name,)
    )
    keys = [int(row[0]) for row in await cursor.fetchall()]
    if not keys:
        return []
    mine = f"id = ANY(%s) AND {_OCCUPYING}"
    # Order matters: each statement only sees the rows the previous ones left occupying.
    await connection.execute(
        "UPDATE tasks SET status = 'SCHEDULED', worker = NULL, client_secret = '', "
        f"server_secret = '', updated_at = %s WHERE {mine} AND status = 'EXECUTING' "
        "AND started_at IS NULL AND NOT cancel_requested",
        (now, keys, worker_name),
    )
    await connection.execute(
        f"UPDATE tasks SET status = 'ABORTED', stopped_at = %s, updated_at = %s WHERE {mine} "
        f"AND cancel_requested AND status NOT IN {FINAL_SQL}",
        (now, now, keys, worker_name),
    )
    await connection.execute(
        "UPDATE tasks SET status = 'FAILED', failure_message = %s, stopped_at = %s, "
        f"updated_at = %s WHERE {mine} AND status NOT IN {FINAL_SQL}",
        (lost_worker_message(worker_name), now, now, keys, worker_name),
    )
    await connection.execute(
        f"UPDATE tasks SET stopped_at = %s, updated_at = %s WHERE {mine}",
        (now, now, keys, worker_name),
    )
    return await load_tasks(connection, "id = ANY(%s)", (keys,))
