"""Concurrent claimers: a task goes to exactly one worker, whoever races for it and from where."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier as ProcessBarrier

import pytest

from domain.build import BuildSpec, TaskSpec
from domain.store import ControllerStore
from tests.integration.storage.child_processes import reports_of
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration

CONTENDERS = 20
PROCESSES = 6
DEADLINE_SECONDS = 60.0


async def _queued(store: ControllerStore, count: int) -> list[str]:
    spec = BuildSpec(tasks=tuple(TaskSpec(name=f"t{index}") for index in range(count)))
    build = await store.create_build(spec)
    return [task.id for task in build.tasks]


async def test_twenty_coroutines_claiming_one_task_make_one_winner(
    store: ControllerStore,
) -> None:
    (task_id,) = await _queued(store, 1)
    claims = await asyncio.gather(
        *(store.claim_task(task_id, f"w{index}") for index in range(CONTENDERS))
    )
    winners = [claim.worker for claim in claims if claim is not None]
    assert len(winners) == 1
    task = await store.get_task(task_id)
    assert task is not None
    assert task.worker == winners[0]


def _claim_all_in_thread(
    backend: StoreBackend,
    clock: FakeClock,
    barrier: threading.Barrier,
    worker: str,
    task_ids: list[str],
) -> list[str]:
    async def run() -> list[str]:
        store = await backend.open(clock)
        try:
            await asyncio.to_thread(barrier.wait, DEADLINE_SECONDS)
            return [task_id for task_id in task_ids if await store.claim_task(task_id, worker)]
        finally:
            await store.aclose()

    return asyncio.run(run())


async def test_twenty_threads_with_their_own_connections_never_share_a_task(
    store: ControllerStore, backend: StoreBackend, clock: FakeClock
) -> None:
    task_ids = await _queued(store, 10)
    barrier = threading.Barrier(CONTENDERS)
    with ThreadPoolExecutor(max_workers=CONTENDERS) as pool:
        futures = [
            pool.submit(
                _claim_all_in_thread,
                backend,
                clock,
                barrier,
                f"w{index}",
                # Each thread walks the tasks from another start, so the races spread out.
                task_ids[index % 10 :] + task_ids[: index % 10],
            )
            for index in range(CONTENDERS)
        ]
        won = [future.result(timeout=DEADLINE_SECONDS) for future in futures]
    claims = Counter(task_id for tasks in won for task_id in tasks)
    assert claims == Counter(dict.fromkeys(task_ids, 1))
    for index, tasks in enumerate(won):
        for task_id in tasks:
            task = await store.get_task(task_id)
            assert task is not None
            assert task.worker == f"w{index}"
    assert await store.queued_tasks() == []


def _claim_in_process(
    backend: StoreBackend,
    barrier: ProcessBarrier,
    results: multiprocessing.Queue[tuple[str, list[str]]],
    worker: str,
    task_ids: list[str],
) -> None:
    async def run() -> list[str]:
        store = await backend.open(FakeClock())
        try:
            await asyncio.to_thread(barrier.wait, DEADLINE_SECONDS)
            return [task_id for task_id in task_ids if await store.claim_task(task_id, worker)]
        finally:
            await store.aclose()

    results.put((worker, asyncio.run(run())))


async def test_controller_processes_sharing_a_database_never_share_a_task(
    store: ControllerStore, backend: StoreBackend
) -> None:
    task_ids = await _queued(store, 5)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results: multiprocessing.Queue[tuple[str, list[str]]] = context.Queue()
    processes = [
        context.Process(
            target=_claim_in_process,
            args=(backend, barrier, results, f"p{index}", task_ids),
            daemon=True,
        )
        for index in range(PROCESSES)
    ]
    won = dict(await reports_of(processes, results, DEADLINE_SECONDS, "a claiming process"))
    claims = Counter(task_id for tasks in won.values() for task_id in tasks)
    assert claims == Counter(dict.fromkeys(task_ids, 1))
    for worker, tasks in won.items():
        for task_id in tasks:
            task = await store.get_task(task_id)
            assert task is not None
            assert task.worker == worker
