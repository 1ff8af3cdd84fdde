"""The scheduler's views of a big pool: what each worker holds is read only where it can matter."""

from __future__ import annotations

from app.controller.long_poll import PollWaiters
from app.controller.scheduler_service import SchedulerService
from domain.build import BuildSpec, TaskSpec
from domain.store import TaskRecord
from tests.unit.controller.fake_store import FakeStore

START = 1_700_000_000.0


class FakeClock:
    """Wall and monotonic time that stand still."""

    def now(self) -> float:
        """The fake wall time."""
        return START

    def monotonic(self) -> float:
        """The same fake time."""
        return START


class CountingStore(FakeStore):
    """A fake store that remembers whose held tasks were read."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.held_read_for: list[str] = []

    async def tasks_of_worker(self, worker_name: str) -> list[TaskRecord]:
        """Count the read, then answer as the fake store does."""
        self.held_read_for.append(worker_name)
        return await super().tasks_of_worker(worker_name)


async def pool_with_one_busy_real_worker() -> tuple[CountingStore, SchedulerService]:
    """Twenty idle workers labelled ``pool: idle`` and one ``pool: real`` holding a task."""
    store = CountingStore()
    scheduler = SchedulerService(store, FakeClock(), PollWaiters(), offline_after_seconds=60)
    for index in range(20):
        name = f"idle-{index}"
        await store.upsert_worker(name, {"name": name, "pool": "idle"}, {}, "hash")
    await store.upsert_worker("real", {"name": "real", "pool": "real"}, {}, "hash")
    await store.create_build(BuildSpec(tasks=(TaskSpec(name="t", labels={"pool": "real"}),)))
    await scheduler.build_submitted()
    assert [task.name for task in await scheduler.claim_for("real")] == ["t"]
    store.held_read_for.clear()
    return store, scheduler


async def test_views_for_a_label_set_read_only_the_held_tasks_of_workers_with_those_labels() -> (
    None
):
    store, scheduler = await pool_with_one_busy_real_worker()

    views = await scheduler.worker_views(for_labels=[{"pool": "real"}, {"pool": "real"}])

    assert store.held_read_for == ["real"]
    assert len(views) == 21
    busy = {view.name: view.running_task_ids for view in views if view.running_task_ids}
    assert list(busy) == ["real"]


async def test_views_without_a_label_set_read_what_every_worker_holds() -> None:
    store, scheduler = await pool_with_one_busy_real_worker()

    views = await scheduler.worker_views()

    assert sorted(store.held_read_for) == sorted(view.name for view in views)
    assert len(views) == 21


async def test_the_pending_reason_of_a_task_reads_only_the_workers_that_could_take_it() -> None:
    store, scheduler = await pool_with_one_busy_real_worker()
    await store.create_build(BuildSpec(tasks=(TaskSpec(name="u", labels={"pool": "real"}),)))
    queued = [task for task in await store.queued_tasks() if task.name == "u"]

    reason = await scheduler.pending_reason(queued[0])

    assert store.held_read_for == ["real"]
    assert reason.kind.value == "workers_busy"


async def test_a_poll_seeing_a_queue_it_cannot_take_from_does_not_nudge_the_status_reporter() -> (
    None
):
    store, scheduler = await pool_with_one_busy_real_worker()
    nudges: list[None] = []
    scheduler.on_change = lambda: nudges.append(None)
    await store.create_build(BuildSpec(tasks=(TaskSpec(name="u", labels={"pool": "real"}),)))

    assert await scheduler.claim_for("idle-0") == []
    assert nudges == []

    await store.upsert_worker("real-2", {"name": "real-2", "pool": "real"}, {}, "hash")
    assert [task.name for task in await scheduler.claim_for("real-2")] == ["u"]
    assert nudges == [None]
