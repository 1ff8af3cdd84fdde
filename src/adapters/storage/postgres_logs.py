"""Command logs in PostgreSQL: ``BYTEA`` chunk rows keyed by byte offset, never a whole log at once.

A log is the concatenation of its ``log_chunks`` rows in ``start_offset`` order, as in the SQLite
store: small appends are merged into the last row (with ``||`` on the server) until it reaches
``COALESCE_LIMIT``, big ones are split at ``LOG_CHUNK_LIMIT``. Ranges are cut on the server with
``substring``, so only the requested bytes travel. Functions here run inside a transaction the
caller opened; ``append_log`` expects the task's row to be locked by it (appends take turns).
"""

from __future__ import annotations

from adapters.storage.log_chunks import COALESCE_LIMIT
from adapters.storage.postgres_connection import Connection
from domain.store import LOG_CHUNK_LIMIT

_NO_END = 2**62
"""An offset past any log (and far enough from BIGINT's limit to do arithmetic with)."""


async def _last_chunk(connection: Connection, key: int, command: str) -> tuple[int, int] | None:
    cursor = await connection.execute(
        "SELECT start_offset, octet_length(data) FROM log_chunks "
        "WHERE task_id = %s AND command = %s ORDER BY start_offset DESC LIMIT 1",
        (key, command),
    )
    row = await cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


async def log_size(connection: Connection, key: int, command: str) -> int:
    """Return how many bytes a command's log holds."""
    last = await _last_chunk(connection, key, command)
    return 0 if last is None else last[0] + last[1]


async def task_log_size(connection: Connection, key: int) -> int:
    """Return how many bytes the logs of all a task's commands hold together."""
    cursor = await connection.execute(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(start_offset + octet_length(data)) "
        "AS size FROM log_chunks WHERE task_id = %s GROUP BY command) AS ends",
        (key,),
    )
    row = await cursor.fetchone()
    assert row is not None  # an aggregate always has one row
    return int(row[0])


async def append_log(connection: Connection, key: int, command: str, data: bytes) -> int:
    """Append ``data`` to a command's log (the caller locked the task's row); return its size."""
    last = await _last_chunk(connection, key, command)
    end = 0 if last is None else last[0] + last[1]
    view = memoryview(data)
    if last is not None and len(view) > 0 and last[1] + len(view) <= COALESCE_LIMIT:
        await connection.execute(
            "UPDATE log_chunks SET data = data || %b "
            "WHERE task_id = %s AND command = %s AND start_offset = %s",
            (view, key, command, last[0]),
        )
        return end + len(view)
    for start in range(0, len(view), LOG_CHUNK_LIMIT):
        piece = view[start : start + LOG_CHUNK_LIMIT]
        await connection.execute(
            "INSERT INTO log_chunks (task_id, command, start_offset, data) VALUES (%s, %s, %s, %b)",
            (key, command, end, piece),
        )
        end += len(piece)
    return end


async def read_piece(connection: Connection, key: int, command: str, offset: int) -> bytes:
    """Return the log from ``offset`` to the end of the chunk holding it (``b""`` past the end)."""
    cursor = await connection.execute(
        "SELECT substring(data FROM least(%(offset)s - start_offset, octet_length(data))::integer "
        "+ 1) FROM log_chunks "
        "WHERE task_id = %(key)s AND command = %(command)s AND start_offset <= %(offset)s "
        "ORDER BY start_offset DESC LIMIT 1",
        {"key": key, "command": command, "offset": offset},
        binary=True,
    )
    row = await cursor.fetchone()
    return b"" if row is None else bytes(row[0])


async def read_range(
    connection: Connection, key: int, command: str, offset: int, limit: int | None
) -> bytes:
    """Return up to ``limit`` bytes of a command's log from ``offset`` (to the end if ``None``)."""
    if limit is not None and limit <= 0:
        return b""
    if offset >= _NO_END:
        return b""
    end = _NO_END if limit is None else min(offset + limit, _NO_END)
    # From the chunk holding ``offset`` to the last one starting before ``end``; each row is
    # cut on the server to its part inside [offset, end), both ends clamped to the row (so a
    # range past the end gives an empty piece, and the casts never overflow).
    cursor = await connection.execute(
        "SELECT substring(data FROM low + 1 FOR high - low) FROM ("
        "  SELECT data, start_offset,"
        "    least(greatest(%(offset)s - start_offset, 0), octet_length(data))::integer AS low,"
        "    least(greatest(%(end)s - start_offset, 0), octet_length(data))::integer AS high"
        "  FROM log_chunks WHERE task_id = %(key)s AND command = %(command)s "
        "AND start_offset < %(end)s AND start_offset >= ("
        "  SELECT COALESCE(MAX(start_offset), 0) FROM log_chunks "
        "  WHERE task_id = %(key)s AND command = %(command)s AND start_offset <= %(offset)s)"
        ") AS cut ORDER BY start_offset",
        {"key": key, "command": command, "offset": offset, "end": end},
        binary=True,
    )
    pieces: list[bytes] = []
    async for (piece,) in cursor:
        pieces.append(bytes(piece))
    return b"".join(pieces)
