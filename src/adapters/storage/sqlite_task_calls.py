"""The SQLite store's one-statement reads and changes of workers' task calls and polls:
``task_to_run`` (``InitialCommands``), ``stop_task`` (``TaskStopped``), ``held_and_reported``
and ``still_queued`` (a poll's looks), as a base class of ``SqliteStore``.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.storage import sqlite_tasks
from adapters.storage.check_in_rows import check_in_read, held_and_reported_of, reported_keys
from adapters.storage.sqlite_connection import SqliteConnection
from adapters.storage.sqlite_rows import load_task_to_run, load_tasks
from adapters.storage.stored_records import dumps_int_list, row_key
from domain.build import TaskStatus
from domain.ports import Clock
from domain.store import HeldAndReported, TaskRecord, TaskStop, TaskToRun

_QUEUED = "status = 'SCHEDULED' AND worker IS NULL"


class SqliteTaskCalls:
    """What ``SqliteStore`` answers workers' task calls and polls with (its ``_db``, ``_clock``)."""

    _db: SqliteConnection
    _clock: Clock

    async def task_to_run(self, task_id: str) -> TaskToRun | None:
        """Return a task with its build's environment."""
        key = row_key(task_id)
        return None if key is None else await self._db.read(lambda db: load_task_to_run(db, key))

    async def stop_task(
        self, task_id: str, status_if_not_final: TaskStatus, failure_message: str = ""
    ) -> TaskStop:
        """Record a claimed task's ``TaskStopped`` once, finalising it with ``failure_message``
        if needed; count the build's CREATED tasks."""
        key, now = row_key(task_id) or 0, self._clock.now()  # no row has key 0
        return await self._db.write(
            lambda db: sqlite_tasks.stop(db, key, status_if_not_final, failure_message, now)
        )

    async def still_queued(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Return those of ``task_ids`` still queued, oldest first."""
        keys = dumps_int_list(task_ids)  # a JSON array: any number of ids in one statement
        condition = f"{_QUEUED} AND id IN (SELECT value FROM json_each(?))"
        return await self._db.read(lambda db: load_tasks(db, condition, (keys,)))

    async def held_and_reported(
        self, worker_name: str, reported_task_ids: Sequence[str]
    ) -> HeldAndReported:
        """Return ``tasks_of_worker`` and the reported tasks that do not occupy the worker."""
        reported = reported_keys(reported_task_ids)
        condition, parameters = check_in_read(worker_name, 0, reported)  # no queue
        tasks = await self._db.read(lambda db: load_tasks(db, condition.format(p="?"), parameters))
        return held_and_reported_of(worker_name, tasks, reported)
