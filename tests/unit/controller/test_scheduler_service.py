"""``SchedulerService`` on the in-memory store: a task's way from submission to its build's
status, dependencies, cancellation and tasks a worker lost."""

from __future__ import annotations

from app.controller.scheduler_service import MISSED_POLLS_BEFORE_LOST, SchedulerService
from domain.build import TaskSpec, TaskStatus
from domain.protocol import CommandStatus
from domain.store import lost_worker_message
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.steps import LINUX, assignment, register, result, submit


async def test_a_submitted_task_is_claimed_started_and_stopped_and_completes_its_build(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(store)
    await scheduler.build_submitted(build.id)
    await register(store)
    [claimed] = await scheduler.claim_for("w1")
    assert (claimed.id, claimed.status, claimed.worker) == (
        build.tasks[0].id,
        TaskStatus.EXECUTING,
        "w1",
    )
    assert claimed.client_secret
    await scheduler.task_started(assignment(claimed))
    await scheduler.command_results(assignment(claimed), [result("main")])
    stopped = await scheduler.task_stopped(assignment(claimed))
    assert stopped is not None
    assert stopped.status is TaskStatus.COMPLETED
    assert stopped.started_at is not None
    assert await scheduler.running_task_ids("w1") == []
    done = await store.get_build(build.id)
    assert done is not None
    assert done.status is TaskStatus.COMPLETED


async def test_a_claimed_task_is_not_handed_to_a_second_worker(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    await submit(store)
    await register(store, "w1")
    await register(store, "w2")
    first = await scheduler.claim_for("w1")
    assert len(first) == 1
    assert await scheduler.claim_for("w2") == []
    assert await scheduler.running_task_ids("w1") == [first[0].id]


async def test_a_worker_without_the_tasks_labels_gets_nothing(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(store)
    await register(store, "mac", {"os": "darwin"})
    assert await scheduler.claim_for("mac") == []
    task = await store.get_task(build.tasks[0].id)
    assert task is not None
    assert (task.status, task.worker) == (TaskStatus.SCHEDULED, None)


async def test_a_failed_command_fails_the_task_and_skips_its_dependant(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(
        store,
        TaskSpec(name="build", labels=LINUX),
        TaskSpec(name="test", labels=LINUX, depends_on=("build",)),
    )
    await register(store)
    [claimed] = await scheduler.claim_for("w1")
    assert claimed.name == "build"
    await scheduler.task_started(assignment(claimed))
    await scheduler.command_results(assignment(claimed), [result("main", CommandStatus.FAILED)])
    await scheduler.task_stopped(assignment(claimed))
    done = await store.get_build(build.id)
    assert done is not None
    assert [task.status for task in done.tasks] == [TaskStatus.FAILED, TaskStatus.SKIPPED]
    assert done.tasks[0].failure_message == 'command "main" failed'
    assert done.status is TaskStatus.FAILED


async def test_a_dependant_is_queued_once_its_dependency_completes(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    await submit(
        store,
        TaskSpec(name="build", labels=LINUX),
        TaskSpec(name="test", labels=LINUX, depends_on=("build",)),
    )
    await register(store)
    [first] = await scheduler.claim_for("w1")
    assert await scheduler.claim_for("w1") == []  # "test" still waits for "build"
    await scheduler.task_stopped(assignment(first))
    [second] = await scheduler.claim_for("w1")
    assert second.name == "test"


async def test_cancelling_a_queued_task_aborts_it_and_its_build_at_once(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(store)
    cancelled = await scheduler.cancel(build.tasks[0].id)
    assert cancelled is not None
    assert cancelled.status is TaskStatus.ABORTED
    done = await store.get_build(build.id)
    assert done is not None
    assert done.status is TaskStatus.ABORTED


async def test_a_cancelled_running_task_is_named_to_stop_by_its_workers_next_poll(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    await submit(store)
    await register(store)
    [claimed] = await scheduler.claim_for("w1")
    await scheduler.cancel(claimed.id)
    worker = await store.get_worker("w1")
    assert worker is not None
    to_stop, to_start = await scheduler.poll_pass(worker, [claimed.id], settle=True, claim=True)
    assert (to_stop, to_start) == ([claimed.id], [])
    stopped = await scheduler.task_stopped(assignment(claimed))
    assert stopped is not None
    assert stopped.status is TaskStatus.ABORTED


async def test_a_final_status_is_kept_when_the_worker_stops_the_task_later(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    await submit(store)
    await register(store)
    [claimed] = await scheduler.claim_for("w1")
    await scheduler.task_failed(assignment(claimed), "the instance could not start")
    assert await scheduler.running_task_ids("w1") == [claimed.id]  # held until stopped
    await scheduler.command_results(assignment(claimed), [result("main")])
    stopped = await scheduler.task_stopped(assignment(claimed))
    assert stopped is not None
    assert (stopped.status, stopped.failure_message) == (
        TaskStatus.FAILED,
        "the instance could not start",
    )


async def test_a_task_the_worker_stops_reporting_fails_after_the_missed_polls(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    await submit(store)
    await register(store)
    [claimed] = await scheduler.claim_for("w1")
    worker = await store.get_worker("w1")
    assert worker is not None
    for _ in range(MISSED_POLLS_BEFORE_LOST - 1):
        await scheduler.poll_pass(worker, [], settle=True, claim=False)
        still = await store.get_task(claimed.id)
        assert still is not None
        assert still.status is TaskStatus.EXECUTING
    await scheduler.poll_pass(worker, [], settle=True, claim=False)
    lost = await store.get_task(claimed.id)
    assert lost is not None
    assert (lost.status, lost.failure_message) == (TaskStatus.FAILED, lost_worker_message("w1"))
    assert lost.stopped_at is not None


async def test_a_manual_task_waits_for_its_trigger(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    build = await submit(store, TaskSpec(name="deploy", labels=LINUX, manual=True))
    await register(store)
    assert await scheduler.claim_for("w1") == []
    triggered = await scheduler.trigger(build.tasks[0].id)
    assert triggered is not None
    assert triggered.status is TaskStatus.SCHEDULED
    assert [task.name for task in await scheduler.claim_for("w1")] == ["deploy"]
