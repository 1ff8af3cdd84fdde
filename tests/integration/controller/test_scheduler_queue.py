"""How scheduling reads the queue: a page at a time, oldest first, and not at all for a full worker.

``SchedulerService`` and ``QueueWatch`` on a real SQLite store; a store wrapper counts the queue
reads, so that the tests see what was read as well as what was handed out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage.sqlite_store import SqliteStore
from app.controller.long_poll import PollWaiters, QueueWatch
from app.controller.scheduler_service import (
    FIRST_QUEUE_PAGE_SIZE,
    QUEUE_PAGE_SIZE,
    SchedulerService,
)
from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.scheduling import QueuedTask, WorkerView, assign
from domain.store import QueueSummary, TaskRecord
from domain.wakeups import QueuedNotice
from domain.worker_capacity import can_take_more, with_tasks
from tests.integration.storage.conftest import FakeClock

pytestmark = pytest.mark.integration


class CountingStore:
    """A ``SqliteStore`` that counts the queue reads and remembers their arguments."""

    def __init__(self, store: SqliteStore) -> None:
        self.inner = store
        self.queue_reads: list[tuple[int | None, int]] = []
        self.summaries = 0

    async def queued_tasks(
        self, limit: int | None = None, after_sequence: int = 0
    ) -> list[TaskRecord]:
        """Count, then read."""
        self.queue_reads.append((limit, after_sequence))
        return await self.inner.queued_tasks(limit, after_sequence)

    async def queue_summary(self) -> QueueSummary:
        """Count, then read."""
        self.summaries += 1
        return await self.inner.queue_summary()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Target:
    """A ``WakeTarget`` that records deliveries."""

    def __init__(self) -> None:
        self.delivered: list[str | None] = []
        self.offered: list[list[str]] = []

    def deliver(self, worker_name: str | None) -> None:
        """Record."""
        self.delivered.append(worker_name)

    def waiting_workers(self) -> list[str]:
        """Nobody in particular."""
        return []

    def busy_waiting_workers(self) -> list[str]:
        """Nobody in particular."""
        return []

    async def deliver_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Record the offered task ids."""
        self.offered.append([notice.task_id for notice in notices])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    """A counting store on a fresh SQLite file."""
    opened = await SqliteStore.open(tmp_path / "controller.db", FakeClock())
    try:
        yield CountingStore(opened)
    finally:
        await opened.aclose()


def _scheduler(store: CountingStore) -> SchedulerService:
    return SchedulerService(
        store,  # every other method goes to a real store
        FakeClock(),
        PollWaiters(),
        offline_after_seconds=60.0,
    )


async def _register(
    store: CountingStore,
    name: str,
    resources: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    await store.inner.upsert_worker(name, labels or {}, resources or {}, "hash")


async def _submit(store: CountingStore, *tasks: TaskSpec) -> list[str]:
    build = await store.inner.create_build(BuildSpec(tasks=tasks))
    return [task.id for task in build.tasks]


def _slot_tasks(count: int, prefix: str = "t", **labels: str) -> list[TaskSpec]:
    return [TaskSpec(f"{prefix}{i}", labels=labels, resources={"slots": 1}) for i in range(count)]


async def test_a_worker_gets_a_fitting_task_queued_behind_a_page_of_tasks_it_cannot_run(
    store: CountingStore,
) -> None:
    await _register(store, "w1", {"slots": 8})
    await _submit(store, *_slot_tasks(FIRST_QUEUE_PAGE_SIZE + QUEUE_PAGE_SIZE + 5, os="darwin"))
    (fitting,) = await _submit(store, TaskSpec("linux", resources={"slots": 1}))
    claimed = await _scheduler(store).claim_for("w1")
    assert [task.id for task in claimed] == [fitting]
    assert [read[0] for read in store.queue_reads] == [
        FIRST_QUEUE_PAGE_SIZE,
        QUEUE_PAGE_SIZE,
        QUEUE_PAGE_SIZE,
    ]


async def test_a_worker_with_room_for_more_than_a_page_takes_the_oldest_in_order(
    store: CountingStore,
) -> None:
    await _register(store, "w1", {"slots": FIRST_QUEUE_PAGE_SIZE + 10})
    ids = await _submit(store, *_slot_tasks(2 * QUEUE_PAGE_SIZE))
    claimed = await _scheduler(store).claim_for("w1")
    assert [task.id for task in claimed] == ids[: FIRST_QUEUE_PAGE_SIZE + 10]
    assert [read[0] for read in store.queue_reads] == [FIRST_QUEUE_PAGE_SIZE, QUEUE_PAGE_SIZE]


async def test_a_worker_that_fills_up_on_the_first_page_reads_no_further(
    store: CountingStore,
) -> None:
    await _register(store, "w1", {"slots": 8})
    ids = await _submit(store, *_slot_tasks(3 * QUEUE_PAGE_SIZE))
    claimed = await _scheduler(store).claim_for("w1")
    assert [task.id for task in claimed] == ids[:8]
    assert store.queue_reads == [(FIRST_QUEUE_PAGE_SIZE, 0)]


async def test_a_full_worker_polls_without_reading_the_queue(store: CountingStore) -> None:
    await _register(store, "w1", {"slots": 2})
    ids = await _submit(store, *_slot_tasks(5))
    scheduler = _scheduler(store)
    assert [task.id for task in await scheduler.claim_for("w1")] == ids[:2]
    store.queue_reads.clear()
    assert await scheduler.claim_for("w1") == []
    assert store.queue_reads == []


async def test_a_worker_running_a_resource_less_task_polls_without_reading_the_queue(
    store: CountingStore,
) -> None:
    await _register(store, "w1", {"slots": 8})
    first, _second = await _submit(store, TaskSpec("alone"), TaskSpec("next"))
    scheduler = _scheduler(store)
    assert [task.id for task in await scheduler.claim_for("w1")] == [first]
    store.queue_reads.clear()
    assert await scheduler.claim_for("w1") == []
    assert store.queue_reads == []


async def test_excluded_tasks_are_passed_over_and_later_ones_handed_out(
    store: CountingStore,
) -> None:
    await _register(store, "w1", {"slots": 2})
    ids = await _submit(store, *_slot_tasks(4))
    claimed = await _scheduler(store).claim_for("w1", exclude={ids[0], ids[2]})
    assert [task.id for task in claimed] == [ids[1], ids[3]]


async def test_queue_watch_offers_queued_and_requeued_tasks_but_reads_nothing_for_claims(
    store: CountingStore,
) -> None:
    watch = QueueWatch(store)  # a real store underneath
    target = Target()
    await watch.check_once(target, [])
    assert target.offered == []
    first, second = await _submit(store, TaskSpec("a"), TaskSpec("b"))
    await store.inner.set_status(first, {TaskStatus.CREATED}, TaskStatus.SCHEDULED)
    await store.inner.set_status(second, {TaskStatus.CREATED}, TaskStatus.SCHEDULED)
    await watch.check_once(target, [])
    assert target.offered == [[first, second]]
    reads = len(store.queue_reads)
    await store.inner.claim_task(first, "w1")
    await watch.check_once(target, [])
    assert target.offered == [[first, second]]
    assert len(store.queue_reads) == reads  # a claim shrinks the queue: nothing to read
    await store.inner.claim_task(second, "w1")
    await store.inner.release_worker("w1")
    await watch.check_once(target, [])
    assert target.offered == [[first, second], [first, second]]  # both were never started
    assert target.delivered == []  # nobody was woken wholesale
    assert store.summaries == 4


_RESOURCES = st.dictionaries(
    st.sampled_from(["slots", "cpu", "tart-vms"]),
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]),
    max_size=3,
)


@given(
    total=_RESOURCES,
    running=st.lists(_RESOURCES, max_size=4),
    task=_RESOURCES,
    paused=st.booleans(),
    online=st.booleans(),
)
def test_a_worker_said_to_take_nothing_more_is_never_assigned_a_task(
    total: dict[str, float],
    running: list[dict[str, float]],
    task: dict[str, float],
    paused: bool,
    online: bool,
) -> None:
    in_use: dict[str, float] = {}
    for held in running:
        for key, amount in held.items():
            in_use[key] = in_use.get(key, 0.0) + amount
    worker = WorkerView(
        name="w",
        resources_total=total,
        resources_in_use=in_use,
        running_task_ids=tuple(f"r{i}" for i in range(len(running))),
        paused=paused,
        online=online,
    )
    if assign([QueuedTask("q", resources=task, sequence=1)], [worker], "w"):
        assert can_take_more(worker)


def test_a_worker_with_tasks_added_holds_their_resources_and_ids() -> None:
    worker = WorkerView(name="w", resources_total={"slots": 4}, resources_in_use={"slots": 1})
    spec = TaskSpec("t", resources={"slots": 2, "cpu": 1})
    task = TaskRecord(
        id="7", build_id="1", name="t", status=TaskStatus.SCHEDULED, spec=spec, sequence=7,
        created_at=0.0, updated_at=0.0,
    )  # fmt: skip
    grown = with_tasks(worker, [task])
    assert dict(grown.resources_in_use) == {"slots": 3.0, "cpu": 1.0}
    assert grown.running_task_ids == ("7",)
    assert with_tasks(worker, []) is worker
