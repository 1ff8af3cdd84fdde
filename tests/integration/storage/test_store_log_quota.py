"""``append_log_within_quota`` on SQLite and PostgreSQL: one store call measures the command's
and the task's logs in its write transaction, keeps what is new and fits the task's quota, and
ends the log with the quota line once; racing appends (two controllers) cannot pass the quota.
"""

from __future__ import annotations

import asyncio

import pytest

from domain.build import BuildSpec, TaskSpec
from domain.log_quota import AppendedLog, quota_line
from domain.store import ControllerStore, NoSuchTaskError
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration


async def _task(store: ControllerStore) -> str:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    return build.tasks[0].id


async def test_an_append_within_the_quota_keeps_only_the_new_bytes_and_says_of_a_gap(
    store: ControllerStore,
) -> None:
    task_id = await _task(store)
    append = store.append_log_within_quota
    assert await append(task_id, "main", b"abcd", 0, 100) == AppendedLog(4)
    assert await append(task_id, "main", b"abcd", 0, 100) == AppendedLog(4)
    assert await append(task_id, "main", b"cdef", 2, 100) == AppendedLog(6)
    assert await append(task_id, "main", b"zz", 10, 100) == AppendedLog(8, gap=4)
    assert await append(task_id, "main", b"no offset", None, 100) == AppendedLog(17)
    assert await store.read_log(task_id, "main") == b"abcdefzzno offset"


async def test_the_chunk_crossing_the_tasks_quota_is_cut_and_later_ones_are_dropped(
    store: ControllerStore,
) -> None:
    task_id = await _task(store)
    append = store.append_log_within_quota
    await append(task_id, "clone", b"c" * 4, 0, 10)
    line = quota_line(10, at_line_start=False)
    crossing = await append(task_id, "main", b"m" * 9, 0, 10)
    assert crossing == AppendedLog(6 + len(line), quota_reached=True)
    assert await store.read_log(task_id, "main") == b"m" * 6 + line
    # A retry of the crossing chunk finds it held; later chunks of any command are dropped.
    assert await append(task_id, "main", b"m" * 9, 0, 10) == AppendedLog(6 + len(line))
    assert await append(task_id, "main", b"later", None, 10) == AppendedLog(6 + len(line))
    assert await append(task_id, "clone", b"more", 4, 10) == AppendedLog(4)
    assert await store.task_log_size(task_id) == 10 + len(line)


async def test_an_append_within_the_quota_to_an_unknown_task_is_refused(
    store: ControllerStore,
) -> None:
    for unknown in ("777", "not-an-id"):
        with pytest.raises(NoSuchTaskError):
            await store.append_log_within_quota(unknown, "main", b"x", 0, 10)


async def test_racing_appends_of_two_stores_cross_the_quota_once(
    backend: StoreBackend, clock: FakeClock
) -> None:
    # Two stores (two pools, as two controllers would have) on one database.
    first, second = await backend.open(clock), await backend.open(clock)
    try:
        task_id = await _task(first)
        quota = 200_000
        chunk = b"x" * 70_000  # over the merge limit: written as its own row
        results = await asyncio.gather(
            *(
                store.append_log_within_quota(task_id, command, chunk, 0, quota)
                for store, command in ((first, "a"), (second, "b"), (first, "c"), (second, "d"))
            )
        )
        assert sum(result.quota_reached for result in results) == 1
        line = quota_line(quota, at_line_start=False)
        assert await first.task_log_size(task_id) == quota + len(line)
    finally:
        await first.aclose()
        await second.aclose()
