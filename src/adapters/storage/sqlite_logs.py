"""Command logs in SQLite: chunk rows keyed by byte offset, never a whole log in memory.

A log is the concatenation of its ``log_chunks`` rows in ``start_offset`` order. Small appends
(a line or two of output each) are merged into the last row until it reaches
``COALESCE_LIMIT``, so that a chatty command does not leave millions of tiny rows; big appends
are split at ``LOG_CHUNK_LIMIT``. Functions here run on the store's database thread inside a
transaction the caller opened.
"""

from __future__ import annotations

import sqlite3

from adapters.storage.log_chunks import COALESCE_LIMIT
from domain.store import LOG_CHUNK_LIMIT


def _last_chunk(connection: sqlite3.Connection, key: int, command: str) -> tuple[int, int] | None:
    row = connection.execute(
        "SELECT start_offset, length(data) FROM log_chunks WHERE task_id = ? AND command = ? "
        "ORDER BY start_offset DESC LIMIT 1",
        (key, command),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def log_size(connection: sqlite3.Connection, key: int, command: str) -> int:
    """Return how many bytes a command's log holds."""
    last = _last_chunk(connection, key, command)
    return 0 if last is None else last[0] + last[1]


def task_log_size(connection: sqlite3.Connection, key: int) -> int:
    """Return how many bytes the logs of all a task's commands hold together."""
    row = connection.execute(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(start_offset + length(data)) AS size "
        "FROM log_chunks WHERE task_id = ? GROUP BY command)",
        (key,),
    ).fetchone()
    return int(row[0])


def append_log(connection: sqlite3.Connection, key: int, command: str, data: bytes) -> int:
    """Append ``data`` to a command's log (the caller checked the task exists); return its size."""
    last = _last_chunk(connection, key, command)
    end = 0 if last is None else last[0] + last[1]
    view = memoryview(data)
    if last is not None and len(view) > 0 and last[1] + len(view) <= COALESCE_LIMIT:
        # Joined here, not with SQL ``||``, which turns blobs into text (and stops at NUL bytes).
        where = (key, command, last[0])
        (previous,) = connection.execute(
            "SELECT data FROM log_chunks WHERE task_id = ? AND command = ? AND start_offset = ?",
            where,
        ).fetchone()
        connection.execute(
            "UPDATE log_chunks SET data = ? WHERE task_id = ? AND command = ? AND start_offset = ?",
            (bytes(previous) + bytes(view), *where),
        )
        return end + len(view)
    for start in range(0, len(view), LOG_CHUNK_LIMIT):
        piece = view[start : start + LOG_CHUNK_LIMIT]
        connection.execute(
            "INSERT INTO log_chunks (task_id, command, start_offset, data) VALUES (?, ?, ?, ?)",
            (key, command, end, bytes(piece)),
        )
        end += len(piece)
    return end


def read_piece(connection: sqlite3.Connection, key: int, command: str, offset: int) -> bytes:
    """Return the log from ``offset`` to the end of the chunk holding it (``b""`` past the end)."""
    row = connection.execute(
        "SELECT start_offset, data FROM log_chunks "
        "WHERE task_id = ? AND command = ? AND start_offset <= ? "
        "ORDER BY start_offset DESC LIMIT 1",
        (key, command, offset),
    ).fetchone()
    if row is None:
        return b""
    start, data = int(row[0]), bytes(row[1])
    return data[offset - start :] if offset < start + len(data) else b""


def read_range(
    connection: sqlite3.Connection, key: int, command: str, offset: int, limit: int | None
) -> bytes:
    """Return up to ``limit`` bytes of a command's log from ``offset`` (to the end if ``None``)."""
    if limit is not None and limit <= 0:
        return b""
    first = connection.execute(
        "SELECT COALESCE(MAX(start_offset), 0) FROM log_chunks "
        "WHERE task_id = ? AND command = ? AND start_offset <= ?",
        (key, command, offset),
    ).fetchone()[0]
    end = None if limit is None else offset + limit
    rows = connection.execute(
        "SELECT start_offset, data FROM log_chunks "
        "WHERE task_id = ? AND command = ? AND start_offset >= ? AND start_offset < ? "
        "ORDER BY start_offset",
        (key, command, first, end if end is not None else 2**63 - 1),
    )
    pieces: list[bytes] = []
    for start, data in rows:
        chunk = bytes(data)
        low = max(offset - int(start), 0)
        high = len(chunk) if end is None else min(end - int(start), len(chunk))
        if low < high:
            pieces.append(chunk[low:high])
    return b"".join(pieces)
