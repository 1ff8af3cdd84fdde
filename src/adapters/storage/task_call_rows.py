"""SQL of two worker task calls, shared by the SQLite and PostgreSQL stores: the read of
``InitialCommands`` (``task_to_run``) and the change of ``TaskStopped`` (``stop_task``).

Statements are templates: ``{p}`` is the driver's placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

from adapters.storage.spec_json import loads_str_map
from adapters.storage.stored_records import FINAL_SQL
from domain.build import TaskStatus
from domain.store import TaskRecord, TaskToRun

# The task's columns and its build's environment: one statement, one snapshot.
TASK_TO_RUN_COLUMNS = "tasks.*, builds.environment AS build_environment"
TASK_TO_RUN_FROM = "tasks JOIN builds ON builds.id = tasks.build_id WHERE tasks.id = {p}"

# The stop and ``finish_task`` in one UPDATE: every right-hand side reads the row as it
# was, so a final status (and its failure message) is never overwritten.
STOP = (
    "UPDATE tasks SET stopped_at = {p}, updated_at = {p}, "
    f"status = CASE WHEN status IN {FINAL_SQL} THEN status ELSE {{p}} END, "
    f"failure_message = CASE WHEN status IN {FINAL_SQL} OR {{p}} = '' "
    "THEN failure_message ELSE {p} END "
    "WHERE id = {p} AND worker IS NOT NULL AND stopped_at IS NULL"
)

# Only CREATED tasks wait for dependencies: none left, and the build has nothing to advance.
CREATED_LEFT = (
    "SELECT COUNT(*) FROM tasks AS b WHERE b.status = 'CREATED' "
    "AND b.build_id = (SELECT t.build_id FROM tasks AS t WHERE t.id = {p})"
)


def stop_parameters(
    key: int, status: TaskStatus, failure_message: str, now: float
) -> tuple[object, ...]:
    """Return the parameters of ``STOP`` (``ValueError`` unless ``status`` is final)."""
    if not status.is_final:
        raise ValueError(f"{status.value} is not a final status")
    return (now, now, status.value, failure_message, failure_message, key)


def task_to_run_of(task: TaskRecord, build_environment: str) -> TaskToRun:
    """Return the ``TaskToRun`` of a task read with its build's stored environment."""
    return TaskToRun(task, loads_str_map(build_environment))
