"""Build sources and snapshots in the store: kept with the build, listed, streamed in chunks."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterable

import psycopg
import pytest

from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.snapshots import SNAPSHOT_CHUNK_LIMIT
from domain.source import BuildSource
from domain.store import ControllerStore
from tests.integration.storage.conftest import FakeClock, SqliteBackend, StoreBackend
from tests.integration.storage.postgres_backend import PostgresBackend

pytestmark = pytest.mark.integration

GIT_SOURCE = BuildSource(
    repository="octo/app",
    clone_url="https://example.com/octo/app.git",
    branch="main",
    commit="0123456789abcdef0123456789abcdef01234567",
    change_message="Fix\n\nbody",
    changed_files=("docs/a.md", "src/b.py"),
)


def _spec(name: str = "t") -> BuildSpec:
    return BuildSpec(tasks=(TaskSpec(name=name),), environment={"K": "v"})


async def _chunks(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _collect(iterator: AsyncIterator[bytes]) -> list[bytes]:
    return [piece async for piece in iterator]


async def test_a_build_keeps_its_source(store: ControllerStore) -> None:
    created = await store.create_build(_spec(), GIT_SOURCE)
    assert created.source == GIT_SOURCE
    loaded = await store.get_build(created.id)
    assert loaded is not None
    assert loaded.source == GIT_SOURCE
    assert loaded.environment == {"K": "v"}


async def test_a_build_without_a_source_has_the_empty_one(store: ControllerStore) -> None:
    created = await store.create_build(_spec())
    assert created.source == BuildSource()
    assert created.source.kind == "none"


async def test_builds_are_listed_newest_first_and_filtered_by_repository_and_branch(
    store: ControllerStore, clock: FakeClock
) -> None:
    ids = []
    for repository, branch in [("o/a", "main"), ("o/b", "main"), ("o/a", "dev"), ("o/a", "main")]:
        build = await store.create_build(_spec(), BuildSource(repository=repository, branch=branch))
        ids.append(build.id)
        clock.advance(1)
    await store.create_build(_spec())
    listed = await store.list_builds(repository="o/a", branch="main")
    assert [build.id for build in listed] == [ids[3], ids[0]]
    assert [b.id for b in await store.list_builds(repository="o/a")] == [ids[3], ids[2], ids[0]]
    assert [b.id for b in await store.list_builds(branch="dev")] == [ids[2]]
    assert len(await store.list_builds()) == 5
    assert [b.id for b in await store.list_builds(limit=2, before=ids[3])] == [ids[2], ids[1]]
    assert await store.list_builds(before="not-an-id") == []
    assert listed[0].tasks[0].name == "t"


async def test_builds_are_filtered_by_their_derived_status(store: ControllerStore) -> None:
    first = await store.create_build(_spec())
    second = await store.create_build(_spec())
    task = second.tasks[0].id
    assert await store.finish_task(task, TaskStatus.FAILED, "no")
    failed = await store.list_builds(status=TaskStatus.FAILED)
    assert [build.id for build in failed] == [second.id]
    queued = await store.list_builds(status=TaskStatus.EXECUTING, limit=1)
    assert [build.id for build in queued] == [first.id]


async def test_a_list_limit_out_of_range_is_refused(store: ControllerStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list_builds(limit=0)


async def test_a_snapshot_is_stored_in_chunks_and_read_back_exactly(
    store: ControllerStore, clock: FakeClock
) -> None:
    # Odd piece sizes: the store cuts them into chunks of SNAPSHOT_CHUNK_LIMIT bytes.
    pieces = [bytes([index % 251]) * (300_000 + index) for index in range(9)]
    data = b"".join(pieces)
    info = await store.put_snapshot(_chunks(pieces))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert info.created_at == clock.now()
    assert await store.get_snapshot(info.id) == info
    read = await _collect(store.iter_snapshot(info.id))
    assert b"".join(read) == data
    assert [len(piece) for piece in read[:-1]] == [SNAPSHOT_CHUNK_LIMIT] * (len(read) - 1)


async def test_two_snapshots_get_different_ids_and_an_empty_one_is_allowed(
    store: ControllerStore,
) -> None:
    first = await store.put_snapshot(_chunks([b"same"]))
    second = await store.put_snapshot(_chunks([b"same"]))
    empty = await store.put_snapshot(_chunks([]))
    assert first.id != second.id
    assert empty.size == 0
    assert empty.sha256 == hashlib.sha256(b"").hexdigest()
    assert await _collect(store.iter_snapshot(empty.id)) == []


async def test_an_unknown_snapshot_is_none_and_yields_nothing(store: ControllerStore) -> None:
    assert await store.get_snapshot("nope") is None
    assert await _collect(store.iter_snapshot("nope")) == []


def _snapshot_rows(backend: StoreBackend) -> tuple[int, int]:
    queries = ("SELECT COUNT(*) FROM snapshots", "SELECT COUNT(*) FROM snapshot_chunks")
    if isinstance(backend, SqliteBackend):
        connection = sqlite3.connect(backend.path)
        try:
            counts = [connection.execute(query).fetchone()[0] for query in queries]
        finally:
            connection.close()
    else:
        assert isinstance(backend, PostgresBackend)
        with psycopg.connect(backend.url) as pg:
            counts = [pg.execute(query).fetchone()[0] for query in queries]  # type: ignore[index]
    return int(counts[0]), int(counts[1])


async def test_a_failed_upload_leaves_nothing_behind(
    store: ControllerStore, backend: StoreBackend
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (SNAPSHOT_CHUNK_LIMIT + 10)
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        await store.put_snapshot(broken())
    assert _snapshot_rows(backend) == (0, 0)
    kept = await store.put_snapshot(_chunks([b"ok"]))
    assert _snapshot_rows(backend) == (1, 1)
    assert await store.get_snapshot(kept.id) == kept


async def test_another_store_on_the_same_database_serves_the_snapshot(
    store: ControllerStore, backend: StoreBackend, clock: FakeClock
) -> None:
    info = await store.put_snapshot(_chunks([b"shared bytes"]))
    other = await backend.open(clock)
    try:
        assert await other.get_snapshot(info.id) == info
        assert b"".join(await _collect(other.iter_snapshot(info.id))) == b"shared bytes"
    finally:
        await other.aclose()
