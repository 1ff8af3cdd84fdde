"""Re-runs on SQLite: adding new attempts of tasks to a build in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from adapters.storage.attempt_rows import (
    INSERT_ATTEMPT,
    RERUN_ALREADY,
    already_rerun,
    insert_parameters,
    rerun_keys,
)
from adapters.storage.sqlite_rows import load_tasks
from domain.rerun import NewAttempt
from domain.store import TaskRecord

_P = "?"


def create_attempts(
    connection: sqlite3.Connection, build_key: int, attempts: Sequence[NewAttempt], now: float
) -> list[TaskRecord]:
    """Insert the new attempts (``RerunError`` if one re-run attempt was re-run already).

    Runs in the store's ``BEGIN IMMEDIATE`` transaction: the check and the inserts are not
    interleaved with another writer's.
    """
    keys = rerun_keys(list(attempts))
    for attempt, key in zip(attempts, keys, strict=True):
        if connection.execute(RERUN_ALREADY.format(p=_P), (key,)).fetchone() is not None:
            raise already_rerun(attempt.rerun_of)
    new_keys = []
    for attempt, key in zip(attempts, keys, strict=True):
        cursor = connection.execute(
            INSERT_ATTEMPT.format(p=_P), insert_parameters(build_key, attempt, key, now)
        )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
        new_keys.append(cursor.lastrowid)
    if not new_keys:
        return []
    marks = ", ".join("?" * len(new_keys))
    return load_tasks(connection, f"id IN ({marks})", new_keys, order="position")
