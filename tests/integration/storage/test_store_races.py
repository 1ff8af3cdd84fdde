"""Races between stores on one database: log appends from several processes, claims vs cancels."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Barrier as ProcessBarrier

import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.store import ControllerStore
from tests.integration.storage.child_processes import reports_of
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration

APPENDERS = 4
APPENDS = 40
RACED_TASKS = 30
DEADLINE_SECONDS = 60.0


def _record(appender: int, index: int) -> bytes:
    # Sizes vary from a line to past the merge limit, so both the merging and the new-chunk
    # paths run concurrently; every record is one line that names its writer and place.
    filler = b"." * ((index * 7919) % 90_000)
    return f"p{appender}-{index:03d}:".encode() + filler + b"\n"


def _append_in_process(
    backend: StoreBackend,
    barrier: ProcessBarrier,
    results: multiprocessing.Queue[list[int]],
    appender: int,
    task_id: str,
) -> None:
    async def run() -> list[int]:
        store = await backend.open(FakeClock())
        try:
            await asyncio.to_thread(barrier.wait, DEADLINE_SECONDS)
            return [
                await store.append_log(task_id, "main", _record(appender, index))
                for index in range(APPENDS)
            ]
        finally:
            await store.aclose()

    results.put(asyncio.run(run()))


async def test_controller_processes_appending_to_one_log_never_overlap(
    store: ControllerStore, backend: StoreBackend
) -> None:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    task_id = build.tasks[0].id
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(APPENDERS)
    results: multiprocessing.Queue[list[int]] = context.Queue()
    processes = [
        context.Process(
            target=_append_in_process,
            args=(backend, barrier, results, appender, task_id),
            daemon=True,
        )
        for appender in range(APPENDERS)
    ]
    reports = await reports_of(processes, results, DEADLINE_SECONDS, "an appending process")
    ends = [end for report in reports for end in report]

    records = [_record(a, i) for a in range(APPENDERS) for i in range(APPENDS)]
    total = sum(len(record) for record in records)
    # Every append saw the end its predecessor left: the returned sizes are all distinct.
    assert len(set(ends)) == len(ends) == len(records)
    assert max(ends) == total == await store.log_size(task_id, "main")
    log = await store.read_log(task_id, "main")
    lines = [line + b"\n" for line in log.split(b"\n")[:-1]]
    assert Counter(lines) == Counter(records)
    for appender in range(APPENDERS):
        mine = [line for line in lines if line.startswith(f"p{appender}-".encode())]
        assert mine == [_record(appender, index) for index in range(APPENDS)]


async def test_a_claim_racing_a_cancel_either_wins_flagged_or_loses_to_abort(
    store: ControllerStore, backend: StoreBackend, clock: FakeClock
) -> None:
    build = await store.create_build(
        BuildSpec(tasks=tuple(TaskSpec(name=f"t{index}") for index in range(RACED_TASKS)))
    )
    other = await backend.open(clock)
    try:
        claims, _ = await asyncio.gather(
            asyncio.gather(*(store.claim_task(task.id, "w1") for task in build.tasks)),
            asyncio.gather(*(other.request_cancel(task.id) for task in reversed(build.tasks))),
        )
    finally:
        await other.aclose()
    for task, claim in zip(build.tasks, claims, strict=True):
        after = await store.get_task(task.id)
        assert after is not None
        if claim is None:
            assert (after.status, after.worker) == (TaskStatus.ABORTED, None)
        else:
            assert (after.status, after.worker, after.cancel_requested) == (
                TaskStatus.EXECUTING,
                "w1",
                True,
            )
    assert await store.queued_tasks() == []
