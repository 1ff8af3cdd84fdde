"""Snapshots in SQLite: a ``snapshots`` row and its ``snapshot_chunks`` blobs, one per round trip.

``SqliteStore`` delegates its ``SnapshotStore`` methods here; the write flow is
``snapshot_chunks.store_snapshot``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Callable

from adapters.storage.snapshot_chunks import new_snapshot_id, store_snapshot
from adapters.storage.sqlite_connection import SqliteConnection
from domain.ports import Clock
from domain.snapshots import SnapshotInfo


class SqliteSnapshots:
    """The snapshots of one SQLite store (sharing its connection)."""

    def __init__(
        self, db: SqliteConnection, clock: Clock, id_factory: Callable[[], str] = new_snapshot_id
    ) -> None:
        self._db = db
        self._clock = clock
        self._new_id = id_factory

    async def put(self, chunks: AsyncIterable[bytes]) -> SnapshotInfo:
        """Store a new snapshot from ``chunks``; return it."""
        return await store_snapshot(self, chunks, self._new_id(), self._clock.now())

    async def get(self, snapshot_id: str) -> SnapshotInfo | None:
        """Return a complete snapshot, or ``None``."""

        def read(db: sqlite3.Connection) -> SnapshotInfo | None:
            row = db.execute(
                "SELECT sha256, size, created_at FROM snapshots WHERE id = ? AND sha256 != ''",
                (snapshot_id,),
            ).fetchone()
            if row is None:
                return None
            return SnapshotInfo(snapshot_id, str(row[0]), int(row[1]), float(row[2]))

        return await self._db.read(read)

    async def iterate(self, snapshot_id: str) -> AsyncIterator[bytes]:
        """Yield a complete snapshot's chunks in order (nothing if there is no such one)."""
        if await self.get(snapshot_id) is None:
            return
        seq = 0
        while True:
            piece = await self._db.read(functools.partial(_chunk, key=(snapshot_id, seq)))
            if piece is None:
                return
            seq += 1
            yield piece

    # --- the writes of ``store_snapshot`` ----------------------------------------------------

    async def begin(self, snapshot_id: str, now: float) -> None:
        """Insert the incomplete ``snapshots`` row."""
        await self._db.write(
            lambda db: db.execute(
                "INSERT INTO snapshots (id, created_at) VALUES (?, ?)", (snapshot_id, now)
            )
        )

    async def add(self, snapshot_id: str, seq: int, data: bytes) -> None:
        """Insert one chunk."""
        await self._db.write(
            lambda db: db.execute(
                "INSERT INTO snapshot_chunks (snapshot_id, seq, data) VALUES (?, ?, ?)",
                (snapshot_id, seq, data),
            )
        )

    async def finish(self, snapshot_id: str, sha256: str, size: int) -> None:
        """Mark the snapshot complete."""
        await self._db.write(
            lambda db: db.execute(
                "UPDATE snapshots SET sha256 = ?, size = ? WHERE id = ?",
                (sha256, size, snapshot_id),
            )
        )

    async def discard(self, snapshot_id: str) -> None:
        """Delete the snapshot; its chunks go with it (``ON DELETE CASCADE``)."""
        await self._db.write(
            lambda db: db.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))
        )


def _chunk(db: sqlite3.Connection, key: tuple[str, int]) -> bytes | None:
    row = db.execute(
        "SELECT data FROM snapshot_chunks WHERE snapshot_id = ? AND seq = ?", key
    ).fetchone()
    return None if row is None else bytes(row[0])
