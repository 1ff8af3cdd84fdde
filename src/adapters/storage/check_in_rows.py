"""SQL and row conversions of a worker's poll check-in, shared by the SQLite and PostgreSQL
stores.

Statements are templates: ``{p}`` is the driver's placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from adapters.storage.spec_json import dumps_float_map, dumps_str_list
from adapters.storage.stored_records import row_key
from domain.build import TaskStatus
from domain.store import (
    REPORTED_LOOKUP_LIMIT,
    HeldAndReported,
    TaskRecord,
    WorkerCheckIn,
    WorkerRecord,
)

# The session is checked by the update itself, so a stale or foreign session records nothing.
# It compares hashes: their timing says nothing of the token.
CHECK_IN = (
    "UPDATE workers SET last_seen = {p}, resources_in_use = {p}, running_task_ids = {p} "
    "WHERE name = {p} AND session_token_hash = {p} RETURNING *"
)
# One read for all: occupying tasks have the worker set, queued ones have none, and reported
# ones are never queued without a worker (so that such a row is surely of the queue's head).
_OCCUPYING_AND_QUEUE_HEAD = (
    "SELECT id FROM tasks WHERE worker = {p} AND stopped_at IS NULL "
    "UNION ALL SELECT * FROM (SELECT id FROM tasks WHERE status = 'SCHEDULED' "
    "AND worker IS NULL ORDER BY id LIMIT {p}) AS queue_head"
)
_REPORTED = (
    " UNION ALL SELECT id FROM tasks WHERE id IN ({keys}) "
    "AND NOT (worker IS NULL AND status = 'SCHEDULED')"
)


def reported_keys(running_task_ids: Sequence[str]) -> dict[str, int]:
    """Return the keys of the reported tasks a check-in reads, by id (see ``WorkerCheckIn``)."""
    keys: dict[str, int] = {}
    for task_id in running_task_ids:
        key = row_key(task_id)
        if key is not None and len(keys) < REPORTED_LOOKUP_LIMIT:
            keys.setdefault(task_id, key)
    return keys


def check_in_read(
    name: str, queue_limit: int, reported: Mapping[str, int]
) -> tuple[str, tuple[object, ...]]:
    """Return the condition on ``tasks`` (a ``{p}`` template) of a check-in's read of the
    worker's tasks, the queue's head and the ``reported`` tasks, and its parameters."""
    keys = tuple(reported.values())
    condition = _OCCUPYING_AND_QUEUE_HEAD
    if keys:
        condition += _REPORTED.format(keys=", ".join(["{p}"] * len(keys)))
    return f"id IN ({condition})", (name, queue_limit, *keys)


def check_in_parameters(
    now: float,
    name: str,
    session_token_hash: str,
    resources_in_use: Mapping[str, float],
    running_task_ids: Sequence[str],
) -> tuple[object, ...]:
    """Return the parameters of ``CHECK_IN``."""
    return (
        now,
        dumps_float_map(resources_in_use),
        dumps_str_list(running_task_ids),
        name,
        session_token_hash,
    )


def check_in_of(
    worker: WorkerRecord, tasks: Iterable[TaskRecord], reported: Mapping[str, int]
) -> WorkerCheckIn:
    """Split what ``check_in_read`` read into the worker's tasks, the queue and the reported
    tasks that do not occupy the worker."""
    tasks = tuple(tasks)
    queued = tuple(t for t in tasks if t.worker is None and t.status is TaskStatus.SCHEDULED)
    queued_ids = {task.id for task in queued}
    mine = held_and_reported_of(worker.name, [t for t in tasks if t.id not in queued_ids], reported)
    return WorkerCheckIn(worker, mine.held, queued, mine.reported)


def held_and_reported_of(
    name: str, tasks: Iterable[TaskRecord], reported: Mapping[str, int]
) -> HeldAndReported:
    """Split what ``check_in_read`` read, less the queue's head, into the tasks that occupy
    worker ``name`` and the reported ones that do not."""
    tasks = tuple(tasks)
    held = tuple(t for t in tasks if t.worker == name and t.stopped_at is None)
    held_ids = {task.id for task in held}
    by_key = {int(task.id): task for task in tasks}
    return HeldAndReported(
        held,
        {task_id: by_key.get(key) for task_id, key in reported.items() if str(key) not in held_ids},
    )
