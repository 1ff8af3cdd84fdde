"""``AppendLogs`` with an ``offset``: a retried chunk is applied once, an overlap adds its tail,
and while PostgreSQL is away the call answers ``unavailable`` fast (issue 14, item 3).

Real controllers over real HTTP with a raw Twirp client: SQLite in tmp_path, and a private
PostgreSQL cluster that the outage test stops and starts again.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from adapters.storage.postgres_store import PostgresStore
from tests.integration.controller.conftest import (
    CI,
    RunningController,
    ShiftableClock,
    WorkerClient,
    serve_on_sqlite,
    serve_store,
)
from tests.integration.fault_stack import StoppablePostgres, private_postgres

pytestmark = pytest.mark.integration

ONE_TASK = """
task:
  name: build
  script: echo hi
"""

FAST_ANSWER_SECONDS = 5.0
"""The longest an ``AppendLogs`` may take to answer while the database is away."""


def _body(data: bytes, offset: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"commandName": "main", "data": base64.b64encode(data).decode()}
    if offset is not None:
        body["offset"] = str(offset)
    return body


async def _append(
    worker: WorkerClient, task: dict[str, Any], data: bytes, offset: int | None
) -> int:
    answer = await worker.ok(CI, "AppendLogs", _body(data, offset), worker.task_headers(task))
    return int(answer.get("bytesLogged", 0))


async def test_a_retried_chunk_with_the_same_offset_is_applied_once(
    controller: RunningController,
) -> None:
    worker, task = await controller.running_task(ONE_TASK)
    assert await _append(worker, task, b"line 1\nline 2\n", 0) == 14
    assert await _append(worker, task, b"line 1\nline 2\n", 0) == 14
    assert await _append(worker, task, b"line 3\n", 14) == 21
    assert await _append(worker, task, b"line 3\n", 14) == 21
    assert await controller.log(task["taskId"]) == b"line 1\nline 2\nline 3\n"


async def test_an_overlapping_chunk_adds_only_its_new_tail(
    controller: RunningController,
) -> None:
    worker, task = await controller.running_task(ONE_TASK)
    await _append(worker, task, b"abcdef", 0)
    assert await _append(worker, task, b"defghi", 3) == 9
    assert await _append(worker, task, b"ab", 0) == 9  # wholly held already
    assert await controller.log(task["taskId"]) == b"abcdefghi"


async def test_a_chunk_past_the_end_or_without_offset_is_appended_whole(
    controller: RunningController,
) -> None:
    worker, task = await controller.running_task(ONE_TASK)
    await _append(worker, task, b"one\n", 0)
    assert await _append(worker, task, b"three\n", 100) == 10  # a gap: kept, and logged
    assert await _append(worker, task, b"four\n", None) == 5  # no offset: as before
    assert await controller.log(task["taskId"]) == b"one\nthree\nfour\n"


async def test_a_retry_of_the_chunk_that_crossed_the_log_quota_adds_nothing(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        controller, _store = await serve_on_sqlite(stack, tmp_path, log_quota_bytes=100)
        worker, task = await controller.running_task(ONE_TASK)
        await _append(worker, task, b"m" * 80, 0)
        crossing = await _append(worker, task, b"n" * 40, 80)
        assert await _append(worker, task, b"n" * 40, 80) == crossing  # the retry
        assert await _append(worker, task, b"late\n", 120) == crossing  # past the quota
        log = await controller.log(task["taskId"])
        assert log.startswith(b"m" * 80 + b"n" * 20 + b"\n--- cirrus: this task's log quota")
        assert log.count(b"quota") == 1
        assert len(log) == crossing


@pytest.fixture
def postgres() -> Iterator[StoppablePostgres]:
    """A private cluster: stopping it must not disturb other tests' databases."""
    yield from private_postgres()


async def test_with_postgresql_stopped_append_logs_is_unavailable_fast_then_lands_once(
    postgres: StoppablePostgres,
) -> None:
    url = await asyncio.to_thread(postgres.create_database)
    async with AsyncExitStack() as stack:
        clock = ShiftableClock()
        store = await PostgresStore.open(url, clock)
        stack.push_async_callback(store.aclose)
        controller = await serve_store(stack, store, clock)
        worker, task = await controller.running_task(ONE_TASK)
        first, second = b"first chunk\n", b"second chunk\n"
        assert await _append(worker, task, first, 0) == len(first)

        await asyncio.to_thread(postgres.halt)
        started = time.monotonic()
        answer = await worker.call(
            CI, "AppendLogs", _body(second, len(first)), worker.task_headers(task)
        )
        took = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "unavailable"
        assert took < FAST_ANSWER_SECONDS, f"AppendLogs took {took:.1f} s with PostgreSQL down"
        started = time.monotonic()
        api = await controller.api("GET", f"/api/v1/tasks/{task['taskId']}")
        took = time.monotonic() - started
        assert api.status_code == 503, api.text
        assert took < FAST_ANSWER_SECONDS, f"the API took {took:.1f} s with PostgreSQL down"

        await asyncio.to_thread(postgres.resume)
        third = b"third chunk\n"
        deadline = time.monotonic() + 60
        while True:  # as a worker does: retry the same chunk, same offset, until it lands
            answer = await worker.call(
                CI, "AppendLogs", _body(second, len(first)), worker.task_headers(task)
            )
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            assert answer.status_code == 503, answer.text
            await asyncio.sleep(0.2)
        assert answer.status_code == 200, answer.text
        await _append(worker, task, second, len(first))  # a retry whose first try did land
        await _append(worker, task, third, len(first + second))
        assert await controller.log(task["taskId"]) == first + second + third
