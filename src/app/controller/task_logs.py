"""What the controller keeps of a task's ``AppendLogs``: bounded chunks, a per-task quota.

A chunk over ``LOG_CHUNK_LIMIT`` (1 MiB, the limit of PROTOCOL.md) is refused. A task's logs
together keep at most ``quota_bytes``: the chunk that crosses the quota is cut at it, one line
saying so follows, and later chunks are acknowledged but dropped, so that a runaway command
neither fills the database nor makes its worker retry forever.
"""

from __future__ import annotations

import logging

from domain.store import LOG_CHUNK_LIMIT, ControllerStore

log = logging.getLogger("cirrus.controller")

DEFAULT_LOG_QUOTA_BYTES = 100 * 1024 * 1024
"""How many log bytes one task may keep, all its commands together, unless configured."""


class LogChunkTooLarge(Exception):
    """An ``AppendLogs`` chunk is over ``LOG_CHUNK_LIMIT``."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"a log chunk of {size} bytes is over the limit of {LOG_CHUNK_LIMIT} bytes (1 MiB); "
            "send smaller chunks"
        )


def quota_line(quota_bytes: int, at_line_start: bool) -> bytes:
    """Return the line that ends a task's log once its quota is reached."""
    line = (
        f"--- cirrus: this task's log quota of {quota_bytes} bytes is reached; "
        "further output is dropped ---\n"
    )
    return (b"" if at_line_start else b"\n") + line.encode()


class TaskLogWriter:
    """Appends a task's log chunks to the store within the chunk limit and the task's quota."""

    def __init__(self, store: ControllerStore, quota_bytes: int = DEFAULT_LOG_QUOTA_BYTES) -> None:
        if quota_bytes < 1:
            raise ValueError(f"the log quota must be positive, got {quota_bytes}")
        self._store = store
        self.quota_bytes = quota_bytes

    async def append(self, task_id: str, command: str, data: bytes) -> None:
        """Keep what fits of ``data`` (``LogChunkTooLarge`` if over the chunk limit)."""
        if len(data) > LOG_CHUNK_LIMIT:
            raise LogChunkTooLarge(len(data))
        if not data:
            return
        stored = await self._store.task_log_size(task_id)
        room = self.quota_bytes - stored
        if room <= 0:
            return  # the quota line was written when the quota was reached
        if len(data) <= room:
            await self._store.append_log(task_id, command, data)
            return
        kept = data[:room]
        log.warning(
            "task %s reached its log quota of %d bytes; dropping further output",
            task_id,
            self.quota_bytes,
        )
        await self._store.append_log(
            task_id, command, kept + quota_line(self.quota_bytes, kept.endswith(b"\n"))
        )
