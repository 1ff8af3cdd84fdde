"""What the SQLite and PostgreSQL stores share about snapshots: ids, chunking and the write flow.

A snapshot is written as a ``snapshots`` row with an empty ``sha256`` (invisible to readers),
then its chunks of at most ``SNAPSHOT_CHUNK_LIMIT`` bytes, each in its own transaction, then
the digest and size: so an upload holds one chunk in memory, never the whole archive, and a
reader never sees half a snapshot. A failed upload deletes what it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from domain.snapshots import SNAPSHOT_CHUNK_LIMIT, SnapshotInfo


def new_snapshot_id() -> str:
    """Return a fresh random snapshot id (22 URL-safe characters, so unguessable)."""
    return secrets.token_urlsafe(16)


async def rechunked(
    chunks: AsyncIterable[bytes], limit: int = SNAPSHOT_CHUNK_LIMIT
) -> AsyncIterator[bytes]:
    """Yield the bytes of ``chunks`` in pieces of exactly ``limit`` bytes (the last shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= limit:
            yield bytes(buffer[:limit])
            del buffer[:limit]
    if buffer:
        yield bytes(buffer)


class SnapshotRows(Protocol):
    """The writes a backend does for ``store_snapshot``, each one transaction."""

    async def begin(self, snapshot_id: str, now: float) -> None:
        """Insert the (not yet complete) ``snapshots`` row."""
        ...

    async def add(self, snapshot_id: str, seq: int, data: bytes) -> None:
        """Insert chunk number ``seq``."""
        ...

    async def finish(self, snapshot_id: str, sha256: str, size: int) -> None:
        """Set the digest and size: the snapshot is complete."""
        ...

    async def discard(self, snapshot_id: str) -> None:
        """Delete the snapshot and its chunks."""
        ...


async def store_snapshot(
    rows: SnapshotRows, chunks: AsyncIterable[bytes], snapshot_id: str, now: float
) -> SnapshotInfo:
    """Write ``chunks`` as snapshot ``snapshot_id``; return it (nothing stays on failure)."""
    digest = hashlib.sha256()
    size = 0
    await rows.begin(snapshot_id, now)
    try:
        seq = 0
        async for piece in rechunked(chunks):
            digest.update(piece)
            size += len(piece)
            await rows.add(snapshot_id, seq, piece)
            seq += 1
        sha256 = digest.hexdigest()
        await rows.finish(snapshot_id, sha256, size)
    except BaseException:
        # Shielded: a cancelled upload (the client went away) must still remove its chunks.
        with contextlib.suppress(Exception):
            await asyncio.shield(rows.discard(snapshot_id))
        raise
    return SnapshotInfo(snapshot_id, sha256, size, now)
