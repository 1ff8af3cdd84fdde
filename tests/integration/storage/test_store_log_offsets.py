"""``append_log`` with an offset, on SQLite and PostgreSQL: only bytes beyond the log's end are
appended, atomically, so that racing retries of one chunk (two controllers, or a retry that
overtakes a slow first attempt) leave it in the log once."""

from __future__ import annotations

import asyncio

import pytest

from domain.build import BuildSpec, TaskSpec
from domain.store import ControllerStore
from tests.integration.storage.conftest import FakeClock, StoreBackend

pytestmark = pytest.mark.integration


async def _task(store: ControllerStore) -> str:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    return build.tasks[0].id


async def test_a_chunk_appended_again_at_its_offset_is_kept_once(store: ControllerStore) -> None:
    task_id = await _task(store)
    assert await store.append_log(task_id, "main", b"one\n", 0) == 4
    assert await store.append_log(task_id, "main", b"one\n", 0) == 4
    assert await store.append_log(task_id, "main", b"two\n", 4) == 8
    assert await store.read_log(task_id, "main") == b"one\ntwo\n"


async def test_an_overlapping_chunk_adds_its_tail_and_a_gap_is_appended_whole(
    store: ControllerStore,
) -> None:
    task_id = await _task(store)
    await store.append_log(task_id, "main", b"abcd", 0)
    assert await store.append_log(task_id, "main", b"cdef", 2) == 6
    assert await store.append_log(task_id, "main", b"zz", 50) == 8
    assert await store.append_log(task_id, "other", b"x", 0) == 1  # per command
    assert await store.read_log(task_id, "main") == b"abcdefzz"


async def test_racing_retries_of_one_chunk_append_it_once(
    backend: StoreBackend, clock: FakeClock
) -> None:
    # Two stores (two pools, as two controllers would have) on one database.
    first, second = await backend.open(clock), await backend.open(clock)
    try:
        task_id = await _task(first)
        chunk = b"x" * 70_000  # over the merge limit: written as its own row
        for round_number in range(5):
            offset = round_number * len(chunk)
            sizes = await asyncio.gather(
                *(
                    store.append_log(task_id, "main", chunk, offset)
                    for store in (first, second, first, second)
                )
            )
            assert max(sizes) == offset + len(chunk)
        assert await first.log_size(task_id, "main") == 5 * len(chunk)
    finally:
        await first.aclose()
        await second.aclose()
