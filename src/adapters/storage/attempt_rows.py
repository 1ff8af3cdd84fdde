"""New attempts of re-run tasks as rows, shared by the SQLite and PostgreSQL stores.

A new attempt is a ``tasks`` row of the same build, after every row it has (``position`` keeps
growing, so the first attempts stay in configuration order and ids stay the FIFO sequence),
with ``attempt`` and ``rerun_of`` set. ``{p}`` is the driver's parameter placeholder.
"""

from __future__ import annotations

from adapters.storage.spec_json import dumps_task_spec
from domain.rerun import NewAttempt, RerunError

INSERT_ATTEMPT = (
    "INSERT INTO tasks (build_id, position, name, status, spec, awaiting_trigger, attempt, "
    "rerun_of, created_at, updated_at) VALUES ({p}, "
    "(SELECT COALESCE(MAX(position), -1) + 1 FROM tasks WHERE build_id = {p}), "
    "{p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)

RERUN_ALREADY = "SELECT rerun_of FROM tasks WHERE rerun_of = {p}"
"""Finds the attempt that already re-runs an attempt (at most one row)."""


def insert_parameters(
    build_key: int, attempt: NewAttempt, rerun_of: int, now: float
) -> tuple[object, ...]:
    """Return the parameters of ``INSERT_ATTEMPT`` for one new attempt."""
    return (
        build_key,
        build_key,
        attempt.spec.name,
        attempt.status.value,
        dumps_task_spec(attempt.spec),
        attempt.awaiting_trigger,
        attempt.attempt,
        rerun_of,
        now,
        now,
    )


def already_rerun(task_id: str) -> RerunError:
    """Return the error of a re-run that lost to another re-run of the same attempt."""
    return RerunError(f"task {task_id} was re-run meanwhile; re-run its latest attempt")


def rerun_keys(attempts: list[NewAttempt]) -> list[int]:
    """Return the row keys of the attempts being re-run (ids are decimal row keys)."""
    keys = []
    for attempt in attempts:
        if not attempt.rerun_of.isdecimal():
            raise RerunError(f"task {attempt.rerun_of!r} is not a stored task")
        keys.append(int(attempt.rerun_of))
    return keys
