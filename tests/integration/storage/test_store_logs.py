"""Command logs in the store: appends, ranges, and streaming big logs in bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest

from domain.build import BuildSpec, TaskSpec
from domain.store import LOG_CHUNK_LIMIT, ControllerStore, NoSuchTaskError

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


async def _task(store: ControllerStore) -> str:
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    return build.tasks[0].id


def _pattern(index: int, size: int) -> bytes:
    # Distinct bytes per chunk, so that a chunk out of place changes the digest.
    return bytes([index % 251]) * (size - 1) + b"\n"


async def test_appends_are_kept_in_order_per_command(store: ControllerStore) -> None:
    task_id = await _task(store)
    assert await store.append_log(task_id, "main", b"one\n") == 4
    assert await store.append_log(task_id, "other", b"x") == 1
    assert await store.append_log(task_id, "main", b"two\n") == 8
    assert await store.append_log(task_id, "main", b"") == 8
    assert await store.read_log(task_id, "main") == b"one\ntwo\n"
    assert await store.read_log(task_id, "other") == b"x"
    assert await store.log_size(task_id, "main") == 8
    assert await store.read_log(task_id, "never") == b""
    assert await store.log_size(task_id, "never") == 0


async def test_log_bytes_are_kept_exactly_also_nul_and_invalid_utf8(
    store: ControllerStore,
) -> None:
    task_id = await _task(store)
    parts = [b"\x00a\x00", b"\xff\xfe", b"\x00", "é\n".encode()]
    for part in parts:
        await store.append_log(task_id, "main", part)
    assert await store.read_log(task_id, "main") == b"".join(parts)
    assert await store.log_size(task_id, "main") == len(b"".join(parts))


async def test_a_range_of_a_log_spans_chunk_boundaries(store: ControllerStore) -> None:
    task_id = await _task(store)
    # Mixed sizes: small appends are merged, big ones split, so the boundaries fall unevenly.
    parts = [b"a" * 10, b"b" * (LOG_CHUNK_LIMIT + 5), b"c" * 3, b"d" * 70_000, b"e"]
    for part in parts:
        await store.append_log(task_id, "main", part)
    whole = b"".join(parts)
    assert await store.read_log(task_id, "main") == whole
    for offset, limit in [(0, 5), (8, 4), (LOG_CHUNK_LIMIT, 20), (len(whole) - 2, 10), (3, None)]:
        expected = whole[offset:] if limit is None else whole[offset : offset + limit]
        assert await store.read_log(task_id, "main", offset, limit) == expected
    assert await store.read_log(task_id, "main", len(whole) + 5) == b""
    assert await store.read_log(task_id, "main", 0, 0) == b""


async def test_a_negative_range_is_refused(store: ControllerStore) -> None:
    task_id = await _task(store)
    with pytest.raises(ValueError, match="offset"):
        await store.read_log(task_id, "main", -1)


async def test_logs_of_an_unknown_task_are_refused(store: ControllerStore) -> None:
    with pytest.raises(NoSuchTaskError):
        await store.append_log("777", "main", b"x")
    with pytest.raises(NoSuchTaskError):
        await store.append_log("not-an-id", "main", b"x")
    assert await store.read_log("777", "main") == b""


async def test_iterating_a_log_from_an_offset_yields_the_rest(store: ControllerStore) -> None:
    task_id = await _task(store)
    await store.append_log(task_id, "main", b"0123456789")
    await store.append_log(task_id, "main", b"x" * (2 * LOG_CHUNK_LIMIT))
    pieces = [piece async for piece in store.iter_log(task_id, "main", 4)]
    assert b"".join(pieces) == b"456789" + b"x" * (2 * LOG_CHUNK_LIMIT)
    assert all(0 < len(piece) <= LOG_CHUNK_LIMIT for piece in pieces)
    assert [piece async for piece in store.iter_log(task_id, "other")] == []


async def test_iteration_picks_up_bytes_appended_meanwhile(store: ControllerStore) -> None:
    task_id = await _task(store)
    await store.append_log(task_id, "main", b"a" * LOG_CHUNK_LIMIT)
    seen = bytearray()
    pieces = store.iter_log(task_id, "main")
    async for piece in pieces:
        if not seen:
            await store.append_log(task_id, "main", b"b" * LOG_CHUNK_LIMIT)
        seen += piece
    assert bytes(seen) == b"a" * LOG_CHUNK_LIMIT + b"b" * LOG_CHUNK_LIMIT


async def test_a_50_mib_log_streams_in_bounded_chunks_and_memory(store: ControllerStore) -> None:
    task_id = await _task(store)
    written = hashlib.sha256()
    for index in range(50):
        chunk = _pattern(index, MIB)
        written.update(chunk)
        await store.append_log(task_id, "main", chunk)
    assert await store.log_size(task_id, "main") == 50 * MIB

    read = hashlib.sha256()
    total = 0
    largest = 0
    tracemalloc.start()
    try:
        async for piece in store.iter_log(task_id, "main"):
            read.update(piece)
            total += len(piece)
            largest = max(largest, len(piece))
            del piece
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 50 * MIB
    assert read.digest() == written.digest()
    assert largest <= LOG_CHUNK_LIMIT
    # A handful of chunk copies at most (row, bytes, slice), never anything near the whole log.
    assert peak < 8 * MIB


async def test_a_range_read_of_a_big_log_returns_only_that_range(store: ControllerStore) -> None:
    task_id = await _task(store)
    for index in range(8):
        await store.append_log(task_id, "main", _pattern(index, MIB))
    middle = await store.read_log(task_id, "main", 3 * MIB - 10, 20)
    assert middle == _pattern(2, MIB)[-10:] + _pattern(3, MIB)[:10]
