"""SQL and row conversions of a worker's poll check-in, shared by the SQLite and PostgreSQL
stores.

Statements are templates: ``{p}`` is the driver's placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from adapters.storage.spec_json import dumps_float_map, dumps_str_list
from domain.store import TaskRecord, WorkerCheckIn, WorkerRecord

# The session is checked by the update itself, so a stale or foreign session records nothing.
# It compares hashes: their timing says nothing of the token.
CHECK_IN = (
    "UPDATE workers SET last_seen = {p}, resources_in_use = {p}, running_task_ids = {p} "
    "WHERE name = {p} AND session_token_hash = {p} RETURNING *"
)
# One read for both: occupying tasks have the worker set, queued ones have none.
OCCUPYING_AND_QUEUE_HEAD = (
    "id IN (SELECT id FROM tasks WHERE worker = {p} AND stopped_at IS NULL "
    "UNION ALL SELECT * FROM (SELECT id FROM tasks WHERE status = 'SCHEDULED' "
    "AND worker IS NULL ORDER BY id LIMIT {p}) AS queue_head)"
)


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


def check_in_of(worker: WorkerRecord, tasks: Iterable[TaskRecord]) -> WorkerCheckIn:
    """Split what ``OCCUPYING_AND_QUEUE_HEAD`` read into the worker's tasks and the queue."""
    tasks = tuple(tasks)
    return WorkerCheckIn(
        worker,
        held=tuple(task for task in tasks if task.worker == worker.name),
        queued=tuple(task for task in tasks if task.worker is None),
    )
