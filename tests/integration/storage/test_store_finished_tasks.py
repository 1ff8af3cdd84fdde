"""What the store tells about a task's end and its logs' size: the controller refuses reports
for a stopped task and enforces a per-task log quota from these answers."""

from __future__ import annotations

import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.store import LOG_CHUNK_LIMIT, ControllerStore, hash_token

pytestmark = pytest.mark.integration


async def _claimed_task(store: ControllerStore) -> str:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    await store.upsert_worker("w1", {}, {}, hash_token("session-1"))
    claimed = await store.claim_task(build.tasks[0].id, "w1")
    assert claimed is not None
    return claimed.id


async def test_task_credentials_say_whether_the_task_was_stopped(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    running = (await store.task_credentials("w1", task_id)).assignment
    assert running is not None
    assert not running.stopped
    await store.mark_started(task_id)
    await store.stop_task(task_id, TaskStatus.COMPLETED)
    stopped = (await store.task_credentials("w1", task_id)).assignment
    assert stopped is not None
    assert stopped.stopped


async def test_a_failed_task_not_yet_stopped_still_counts_as_running(
    store: ControllerStore,
) -> None:
    task_id = await _claimed_task(store)
    await store.finish_task(task_id, TaskStatus.FAILED, "the worker said so")
    assignment = (await store.task_credentials("w1", task_id)).assignment
    assert assignment is not None
    assert not assignment.stopped


async def test_the_log_size_of_a_task_adds_up_every_command(store: ControllerStore) -> None:
    task_id = await _claimed_task(store)
    assert await store.task_log_size(task_id) == 0
    await store.append_log(task_id, "clone", b"x" * 10)
    await store.append_log(task_id, "main", b"y" * 7)
    await store.append_log(task_id, "clone", b"z" * 5)
    big = b"b" * (2 * LOG_CHUNK_LIMIT + 3)  # stored as several chunk rows
    await store.append_log(task_id, "big", big)
    assert await store.task_log_size(task_id) == 15 + 7 + len(big)
    for unknown in ("999999", "abc", ""):
        assert await store.task_log_size(unknown) == 0
