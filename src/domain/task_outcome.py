"""What a task's end means: its final status once its worker stopped it, and timeouts.

Pure rules over one stored task, used by the controller's scheduler service.
"""

from __future__ import annotations

from domain.build import TaskStatus
from domain.protocol import CommandStatus
from domain.store import TaskRecord, lost_worker_message


def stopped_status(task: TaskRecord, now: float) -> tuple[TaskStatus, str]:
    """Return the final status (and failure message) of a task whose worker sent ``TaskStopped``.

    ``FAILED`` if ``TaskFailed`` came or a command failed; ``ABORTED`` if a cancel was requested;
    ``FAILED`` with a timeout message if a command was aborted once the task's timeout had run
    out (the worker aborts the running command on expiry; as hosted Cirrus CI, a timed-out task
    fails); ``ABORTED`` if a command was aborted otherwise (the worker cancelled it); else
    ``COMPLETED``. ``now`` is when ``TaskStopped`` arrived.
    """
    if task.status.is_final:
        return task.status, task.failure_message
    failed = [r.name for r in task.command_results if r.status is CommandStatus.FAILED]
    if failed:
        return TaskStatus.FAILED, f'command "{failed[0]}" failed'
    if task.cancel_requested:
        return TaskStatus.ABORTED, ""
    aborted = [r.name for r in task.command_results if r.status is CommandStatus.ABORTED]
    if aborted and timed_out(task, now):
        return TaskStatus.FAILED, (
            f'timed out after {task.spec.timeout_seconds} s (command "{aborted[0]}" was aborted)'
        )
    if aborted:
        return TaskStatus.ABORTED, ""
    return TaskStatus.COMPLETED, ""


TIMEOUT_SLACK_SECONDS = 1.0
"""How much sooner than its timeout a task may stop and still count as timed out: the worker
starts its timer when ``InitialCommands`` answers, which can be a moment before the controller
receives the ``TaskStarted`` that stamps ``started_at``."""


def timed_out(task: TaskRecord, now: float) -> bool:
    """Whether a started task has run (about) its whole timeout by ``now``."""
    limit = task.spec.timeout_seconds
    return (
        limit > 0
        and task.started_at is not None
        and now - task.started_at >= limit - TIMEOUT_SLACK_SECONDS
    )


def released_from(task: TaskRecord, worker_name: str) -> bool:
    """Whether ``task`` was failed because ``worker_name`` was lost."""
    # A lost worker's started task stays recorded against it, failed with this message.
    return task.status is TaskStatus.FAILED and task.failure_message == lost_worker_message(
        worker_name
    )
