"""Snapshots in PostgreSQL: a ``snapshots`` row and its ``BYTEA`` chunks, one per round trip.

``PostgresStore`` delegates its ``SnapshotStore`` methods here; the write flow is
``snapshot_chunks.store_snapshot``. Every controller sharing the database serves every snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable

from adapters.storage.postgres_connection import Connection, PostgresDatabase
from adapters.storage.snapshot_chunks import new_snapshot_id, store_snapshot
from domain.ports import Clock
from domain.snapshots import SnapshotInfo


class PostgresSnapshots:
    """The snapshots of one PostgreSQL store (sharing its pool)."""

    def __init__(
        self, db: PostgresDatabase, clock: Clock, id_factory: Callable[[], str] = new_snapshot_id
    ) -> None:
        self._db = db
        self._clock = clock
        self._new_id = id_factory

    async def put(self, chunks: AsyncIterable[bytes]) -> SnapshotInfo:
        """Store a new snapshot from ``chunks``; return it."""
        return await store_snapshot(self, chunks, self._new_id(), self._clock.now())

    async def get(self, snapshot_id: str) -> SnapshotInfo | None:
        """Return a complete snapshot, or ``None``."""

        async def read(db: Connection) -> SnapshotInfo | None:
            cursor = await db.execute(
                "SELECT sha256, size, created_at FROM snapshots WHERE id = %s AND sha256 != ''",
                (snapshot_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            return SnapshotInfo(snapshot_id, str(row[0]), int(row[1]), float(row[2]))

        return await self._db.read_statement(read)

    async def iterate(self, snapshot_id: str) -> AsyncIterator[bytes]:
        """Yield a complete snapshot's chunks in order (nothing if there is no such one)."""
        if await self.get(snapshot_id) is None:
            return
        seq = 0
        while True:
            # No connection is held between chunks: a slow client never pins one.
            piece = await self._db.read_statement(functools.partial(_chunk, key=(snapshot_id, seq)))
            if piece is None:
                return
            seq += 1
            yield piece

    # --- the writes of ``store_snapshot`` ----------------------------------------------------

    async def _write(self, statement: str, parameters: tuple[object, ...]) -> None:
        async def write(db: Connection) -> None:
            await db.execute(statement, parameters)

        await self._db.write_statement(write)

    async def begin(self, snapshot_id: str, now: float) -> None:
        """Insert the incomplete ``snapshots`` row."""
        await self._write(
            "INSERT INTO snapshots (id, created_at) VALUES (%s, %s)", (snapshot_id, now)
        )

    async def add(self, snapshot_id: str, seq: int, data: bytes) -> None:
        """Insert one chunk."""
        await self._write(
            "INSERT INTO snapshot_chunks (snapshot_id, seq, data) VALUES (%s, %s, %b)",
            (snapshot_id, seq, data),
        )

    async def finish(self, snapshot_id: str, sha256: str, size: int) -> None:
        """Mark the snapshot complete."""
        await self._write(
            "UPDATE snapshots SET sha256 = %s, size = %s WHERE id = %s",
            (sha256, size, snapshot_id),
        )

    async def discard(self, snapshot_id: str) -> None:
        """Delete the snapshot; its chunks go with it (``ON DELETE CASCADE``)."""
        await self._write("DELETE FROM snapshots WHERE id = %s", (snapshot_id,))


async def _chunk(db: Connection, key: tuple[str, int]) -> bytes | None:
    cursor = await db.execute(
        "SELECT data FROM snapshot_chunks WHERE snapshot_id = %s AND seq = %s", key, binary=True
    )
    row = await cursor.fetchone()
    return None if row is None else bytes(row[0])
