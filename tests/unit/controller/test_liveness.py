"""Liveness sweeps on the in-memory store: a silent worker's tasks are released after the
window, a worker that polls again keeps them, and an outage does not count as silence."""

from __future__ import annotations

import pytest

from app.controller.liveness import STALL_SECONDS
from app.controller.long_poll import PollWaiters
from app.controller.scheduler_service import SchedulerService
from domain.build import TaskSpec, TaskStatus
from domain.store import TaskRecord, WorkerRecord, hash_token, lost_worker_message
from tests.unit.controller.conftest import OFFLINE_AFTER
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock
from tests.unit.controller.steps import LINUX, assignment, register, submit


async def _two_claimed_one_started(
    store: FakeStore, scheduler: SchedulerService
) -> tuple[TaskRecord, TaskRecord]:
    """Claim two tasks for w1 and start the first; return (started, unstarted)."""
    a_task, b_task = (TaskSpec(name=n, labels=LINUX, resources={"cpu": 1.0}) for n in "ab")
    await submit(store, a_task, b_task)
    await register(store)
    started, unstarted = await scheduler.claim_for("w1")
    await scheduler.task_started(assignment(started))
    return started, unstarted


async def _task(store: FakeStore, task_id: str) -> TaskRecord:
    task = await store.get_task(task_id)
    assert task is not None
    return task


async def test_a_silent_worker_is_lost_its_started_task_fails_and_the_other_is_queued_again(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    started, unstarted = await _two_claimed_one_started(store, scheduler)
    clock.advance(OFFLINE_AFTER + 1)
    assert await scheduler.sweep() == ["w1"]
    failed = await _task(store, started.id)
    assert (failed.status, failed.failure_message) == (
        TaskStatus.FAILED,
        lost_worker_message("w1"),
    )
    requeued = await _task(store, unstarted.id)
    assert (requeued.status, requeued.worker) == (TaskStatus.SCHEDULED, None)
    await register(store, "w2")
    assert [task.id for task in await scheduler.claim_for("w2")] == [unstarted.id]


async def test_a_worker_that_polls_within_the_window_keeps_its_tasks(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    started, unstarted = await _two_claimed_one_started(store, scheduler)
    for _ in range(3):
        clock.advance(OFFLINE_AFTER - 1)
        await store.check_in_worker(
            "w1", hash_token("session of w1"), {}, [started.id, unstarted.id], queue_limit=1
        )
        assert await scheduler.sweep() == []
    for task_id in (started.id, unstarted.id):
        task = await _task(store, task_id)
        assert (task.status, task.worker) == (TaskStatus.EXECUTING, "w1")


async def test_a_worker_is_swept_once_and_a_second_sweep_finds_nothing_to_release(
    store: FakeStore, scheduler: SchedulerService, clock: FakeClock
) -> None:
    await _two_claimed_one_started(store, scheduler)
    clock.advance(OFFLINE_AFTER + 1)
    assert await scheduler.sweep() == ["w1"]
    assert await scheduler.sweep() == []


class StallingStore(FakeStore):
    """A store whose worker listing takes longer than ``STALL_SECONDS`` (a database hang)."""

    async def list_workers(self) -> list[WorkerRecord]:
        """Return every worker after the stall."""
        assert isinstance(self.clock, FakeClock)
        self.clock.advance(STALL_SECONDS + 1)
        return await super().list_workers()


class FailingStore(FakeStore):
    """A store whose worker listing fails while ``failing`` is set (a database outage)."""

    failing = False

    async def list_workers(self) -> list[WorkerRecord]:
        """Fail, or return every worker."""
        if self.failing:
            raise ConnectionError("the database is away")
        return await super().list_workers()


@pytest.fixture
def stalling(clock: FakeClock) -> tuple[StallingStore, SchedulerService]:
    """A scheduler on a store that stalls on each worker listing."""
    store = StallingStore(clock)
    return store, SchedulerService(store, clock, PollWaiters(), offline_after_seconds=OFFLINE_AFTER)


async def test_silence_counts_afresh_after_the_store_stalled(
    stalling: tuple[StallingStore, SchedulerService], clock: FakeClock
) -> None:
    store, scheduler = stalling
    await register(store)
    await submit(store)
    assert len(await scheduler.claim_for("w1")) == 1
    clock.advance(OFFLINE_AFTER + 1)
    assert await scheduler.sweep() == []
    worker = await store.get_worker("w1")
    assert worker is not None
    assert scheduler.is_online(worker)
    assert await scheduler.running_task_ids("w1") != []


async def test_silence_counts_afresh_after_the_store_failed(clock: FakeClock) -> None:
    store = FailingStore(clock)
    scheduler = SchedulerService(store, clock, PollWaiters(), offline_after_seconds=OFFLINE_AFTER)
    await register(store)
    await submit(store)
    await scheduler.claim_for("w1")
    clock.advance(OFFLINE_AFTER + 1)
    store.failing = True
    with pytest.raises(ConnectionError):
        await scheduler.sweep()
    store.failing = False
    assert await scheduler.sweep() == []
    clock.advance(OFFLINE_AFTER + 1)
    assert await scheduler.sweep() == ["w1"]
