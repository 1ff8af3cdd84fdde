"""What a worker can still take, as the scheduler's accounting sees it.

``WorkerView``s built from the tasks the controller handed a worker and has not seen stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from domain.resources import free_resources, sum_resources
from domain.scheduling import QueuedTask, WorkerView, uses_resources
from domain.store import TaskRecord


def queued_view(task: TaskRecord) -> QueuedTask:
    """Return what the scheduler needs of a queued task."""
    return task.as_queued()


def can_take_more(worker: WorkerView) -> bool:
    """Return whether some task could still fit ``worker`` (if not, the queue needs no look).

    The converse of ``domain.scheduling.assign``'s rules: a worker running nothing takes any
    task; one running a resource-less task (or any task, without resources) takes nothing more;
    otherwise a task needs a positive amount of some resource, so some must be left free.
    """
    if worker.paused or not worker.online:
        return False
    if not worker.running_task_ids:
        return True
    if not uses_resources(worker.resources_in_use):
        return False
    free = free_resources(worker.resources_total, worker.resources_in_use)
    return any(amount > 0 for amount in free.values())


def with_tasks(worker: WorkerView, tasks: Sequence[TaskRecord]) -> WorkerView:
    """Return ``worker`` as it will be once it also holds ``tasks``."""
    if not tasks:
        return worker
    in_use = dict(worker.resources_in_use)
    for key, amount in task_resources(tasks).items():
        in_use[key] = in_use.get(key, 0.0) + amount
    return replace(
        worker,
        resources_in_use=in_use,
        running_task_ids=(*worker.running_task_ids, *(task.id for task in tasks)),
    )


def task_resources(tasks: Iterable[TaskRecord]) -> dict[str, float]:
    """Return the resources ``tasks`` request together."""
    return sum_resources(task.spec.resources for task in tasks)
