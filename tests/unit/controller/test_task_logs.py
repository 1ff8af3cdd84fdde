"""``TaskLogWriter`` on the in-memory store: the chunk limit, the task's quota, retried chunks;
and a stopped task's calls, which the authenticator marks so that logs are refused."""

from __future__ import annotations

import pytest

from app.controller.auth import (
    CLIENT_SECRET_HEADER,
    REGISTRATION_TOKEN_HEADER,
    SESSION_TOKEN_HEADER,
    TASK_ID_HEADER,
    WORKER_NAME_HEADER,
    TokenHash,
    WorkerAuthenticator,
)
from app.controller.scheduler_service import SchedulerService
from app.controller.task_logs import LogChunkTooLarge, TaskLogWriter, quota_line
from domain.store import LOG_CHUNK_LIMIT
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.steps import assignment, register, submit


async def _task_id(store: FakeStore) -> str:
    return (await submit(store)).tasks[0].id


async def test_a_chunk_over_the_limit_is_refused_and_nothing_is_kept(store: FakeStore) -> None:
    task_id = await _task_id(store)
    writer = TaskLogWriter(store)
    with pytest.raises(LogChunkTooLarge, match="1 MiB"):
        await writer.append(task_id, "main", b"x" * (LOG_CHUNK_LIMIT + 1))
    assert await store.log_size(task_id, "main") == 0
    assert await writer.append(task_id, "main", b"x" * LOG_CHUNK_LIMIT) == LOG_CHUNK_LIMIT


async def test_the_chunk_that_crosses_the_quota_is_cut_and_later_chunks_are_dropped(
    store: FakeStore,
) -> None:
    task_id = await _task_id(store)
    writer = TaskLogWriter(store, quota_bytes=10)
    await writer.append(task_id, "main", b"123456")
    await writer.append(task_id, "other", b"abcdef")
    end = b"abcd" + quota_line(10, at_line_start=False)
    assert await store.read_log(task_id, "other") == end
    size = await store.log_size(task_id, "other")
    assert await writer.append(task_id, "other", b"more\n") == size
    assert await writer.append(task_id, "main", b"more\n") == 6
    assert await store.read_log(task_id, "main") == b"123456"


async def test_a_retried_chunk_with_its_offset_is_kept_once(store: FakeStore) -> None:
    task_id = await _task_id(store)
    writer = TaskLogWriter(store)
    assert await writer.append(task_id, "main", b"hello ", offset=0) == 6
    assert await writer.append(task_id, "main", b"hello ", offset=0) == 6
    assert await writer.append(task_id, "main", b"world\n", offset=6) == 12
    assert await writer.append(task_id, "main", b"lo world\n", offset=3) == 12
    assert await store.read_log(task_id, "main") == b"hello world\n"


async def test_a_chunk_past_a_gap_is_kept_whole(store: FakeStore) -> None:
    task_id = await _task_id(store)
    writer = TaskLogWriter(store)
    await writer.append(task_id, "main", b"abc", offset=0)
    assert await writer.append(task_id, "main", b"xyz", offset=10) == 6
    assert await store.read_log(task_id, "main") == b"abcxyz"


async def test_a_stopped_tasks_calls_are_marked_so_its_logs_are_refused(
    store: FakeStore, scheduler: SchedulerService
) -> None:
    await submit(store)
    await register(store)
    [claimed] = await scheduler.claim_for("w1")
    auth = WorkerAuthenticator(store, TokenHash.of("registration"))
    headers = {
        REGISTRATION_TOKEN_HEADER: "registration",
        SESSION_TOKEN_HEADER: "session of w1",
        WORKER_NAME_HEADER: "w1",
        TASK_ID_HEADER: claimed.id,
        CLIENT_SECRET_HEADER: claimed.client_secret,
    }
    assert not (await auth.task(headers)).task.stopped
    await scheduler.task_stopped(assignment(claimed))
    assert (await auth.task(headers)).task.stopped
