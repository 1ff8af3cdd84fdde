"""Re-runs on the in-memory store: new attempts are queued, dependants follow the new attempt,
an attempt is re-run once, and only final tasks are re-run."""

from __future__ import annotations

import pytest

from app.controller.reruns import NoSuchRecordError, rerun_build, rerun_task, rerun_tasks
from app.controller.scheduler_service import SchedulerService
from domain.build import TaskSpec, TaskStatus
from domain.protocol import CommandStatus
from domain.rerun import RerunError
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.steps import LINUX, assignment, register, result, submit


async def _run_all(scheduler: SchedulerService, failing: frozenset[str] = frozenset()) -> list[str]:
    """Let w1 run every task it is handed until none is left; return the names it ran."""
    ran = []
    while claimed := await scheduler.claim_for("w1"):
        for task in claimed:
            status = CommandStatus.FAILED if task.name in failing else CommandStatus.COMPLETED
            await scheduler.command_results(assignment(task), [result("main", status)])
            await scheduler.task_stopped(assignment(task))
            ran.append(task.name)
    return ran


async def test_a_rerun_task_gets_a_queued_new_attempt_and_its_build_runs_again(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(store)
    await register(store)
    await _run_all(scheduler, frozenset({"main"}))
    [again] = await rerun_task(store, scheduler, build.tasks[0].id)
    assert (again.attempt, again.rerun_of, again.status) == (
        2,
        build.tasks[0].id,
        TaskStatus.SCHEDULED,
    )
    running = await store.get_build(build.id)
    assert running is not None
    assert running.status is TaskStatus.EXECUTING
    assert [task.id for task in running.earlier_attempts] == [build.tasks[0].id]
    assert await _run_all(scheduler) == ["main"]
    done = await store.get_build(build.id)
    assert done is not None
    assert done.status is TaskStatus.COMPLETED


async def test_re_running_a_dependency_re_runs_its_dependant_after_the_new_attempt(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(
        store,
        TaskSpec(name="build", labels=LINUX),
        TaskSpec(name="test", labels=LINUX, depends_on=("build",)),
    )
    await register(store)
    assert await _run_all(scheduler) == ["build", "test"]
    created = await rerun_task(store, scheduler, build.tasks[0].id)
    assert [(t.name, t.status) for t in created] == [
        ("build", TaskStatus.SCHEDULED),
        ("test", TaskStatus.CREATED),
    ]
    assert await _run_all(scheduler) == ["build", "test"]


async def test_an_attempt_is_re_run_once(store: FakeStore, scheduler: SchedulerService) -> None:
    build = await submit(store)
    await register(store)
    await _run_all(scheduler)
    await rerun_task(store, scheduler, build.tasks[0].id)
    with pytest.raises(RerunError):
        await rerun_tasks(store, scheduler, build.id, [build.tasks[0].id])


async def test_a_task_that_is_not_final_is_not_re_run(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(store)
    with pytest.raises(RerunError):
        await rerun_task(store, scheduler, build.tasks[0].id)
    assert len(await store.list_build_tasks(build.id)) == 1


async def test_re_running_a_builds_failures_leaves_its_completed_tasks(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(
        store, TaskSpec(name="good", labels=LINUX), TaskSpec(name="bad", labels=LINUX)
    )
    await register(store)
    await _run_all(scheduler, frozenset({"bad"}))
    created = await rerun_build(store, scheduler, build.id, failed_only=True)
    assert [task.name for task in created] == ["bad"]


async def test_an_unknown_task_or_build_is_no_such_record(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    with pytest.raises(NoSuchRecordError):
        await rerun_task(store, scheduler, "404")
    with pytest.raises(NoSuchRecordError):
        await rerun_build(store, scheduler, "404", failed_only=False)
