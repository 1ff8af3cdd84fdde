"""Re-running tasks and builds: plans a re-run with ``domain.rerun``, stores the new attempts
and hands them to the scheduler. The API, the CLI (through the API) and the pages share it."""

from __future__ import annotations

import logging
from collections.abc import Collection

from app.controller.scheduler_service import SchedulerService
from domain.rerun import RerunError, build_rerun_choice, plan_rerun
from domain.store import BuildStore, TaskRecord

log = logging.getLogger("cirrus.controller")


class NoSuchRecordError(LookupError):
    """The task or build to re-run does not exist."""


async def rerun_tasks(
    store: BuildStore, scheduler: SchedulerService, build_id: str, chosen: Collection[str]
) -> list[TaskRecord]:
    """Re-run the ``chosen`` tasks of a build and their final dependants; return the new
    attempts as they are once scheduled (``RerunError`` if the rules refuse)."""
    tasks = await store.list_build_tasks(build_id)
    if not tasks:
        raise NoSuchRecordError(f"no build with id {build_id!r}")
    plans = plan_rerun(tasks, chosen)
    created = await store.create_attempts(build_id, plans)
    for record in created:
        log.info("task %s: attempt %d re-runs task %s", record.id, record.attempt, record.rerun_of)
    # New attempts with dependencies wait as CREATED until the scheduler resolves them to the
    # latest attempts; those without are queued already and are offered to held polls.
    await scheduler.advance_build(build_id)
    await scheduler.build_submitted(build_id)
    current = {task.id: task for task in await store.list_build_tasks(build_id)}
    return [current.get(record.id, record) for record in created]


async def rerun_task(
    store: BuildStore, scheduler: SchedulerService, task_id: str
) -> list[TaskRecord]:
    """Re-run one task (and its final dependants); the first record returned is its new
    attempt."""
    task = await store.get_task(task_id)
    if task is None:
        raise NoSuchRecordError(f"no task with id {task_id!r}")
    return await rerun_tasks(store, scheduler, task.build_id, [task.id])


async def rerun_build(
    store: BuildStore, scheduler: SchedulerService, build_id: str, *, failed_only: bool
) -> list[TaskRecord]:
    """Re-run every final task of a build, or only its failed and aborted ones (with their
    dependants); return the new attempts."""
    tasks = await store.list_build_tasks(build_id)
    if not tasks:
        raise NoSuchRecordError(f"no build with id {build_id!r}")
    return await rerun_tasks(
        store, scheduler, build_id, build_rerun_choice(tasks, failed_only=failed_only)
    )


__all__ = ["NoSuchRecordError", "RerunError", "rerun_build", "rerun_task", "rerun_tasks"]
