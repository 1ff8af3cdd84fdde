"""Snapshots: archives of a working tree (``.tar.gz``) uploaded to the controller for a build.

A snapshot is kept in the controller's database as a run of chunks, so that an upload and a
download need one chunk in memory at a time, and every controller process sharing a PostgreSQL
database serves the same snapshots. Its id is random (never guessable from the content), and
its SHA-256 lets the worker check what it unpacks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

SNAPSHOT_CHUNK_LIMIT = 1024 * 1024
"""Largest piece of a snapshot a store keeps (and yields) at once; longer pieces are split."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A stored snapshot: its id, the SHA-256 (hex) and size of its bytes, when it was stored."""

    id: str
    sha256: str
    size: int
    created_at: float


class SnapshotStore(Protocol):
    """The snapshot part of the controller's store (``ControllerStore`` includes it)."""

    async def put_snapshot(self, chunks: AsyncIterable[bytes]) -> SnapshotInfo:
        """Store the bytes ``chunks`` yields as a new snapshot; return it.

        Chunks are written as they come (pieces of at most ``SNAPSHOT_CHUNK_LIMIT``); the
        snapshot becomes visible only once all are written, and nothing of it stays if the
        iterator or the database fails.
        """
        ...

    async def get_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        """Return a complete snapshot (``None`` if unknown or still being written)."""
        ...

    def iter_snapshot(self, snapshot_id: str) -> AsyncIterator[bytes]:
        """Yield a snapshot's bytes in order, one stored chunk at a time (nothing if unknown)."""
        ...
