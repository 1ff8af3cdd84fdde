"""What the controller keeps of a task's ``AppendLogs``: bounded chunks, a per-task quota.

A chunk over ``LOG_CHUNK_LIMIT`` (1 MiB, the limit of PROTOCOL.md) is refused. A task's logs
together keep at most ``quota_bytes``: the chunk that crosses the quota is cut at it, one line
saying so follows, and later chunks are acknowledged but dropped, so that a runaway command
neither fills the database nor makes its worker retry forever.

A chunk sent with its ``offset`` (docs/polling-and-logs.md, "AppendLogs offset") adds only the
bytes beyond what the command's log holds, so a chunk retried after a timeout is applied once;
the store measures both in its write transaction (``domain.log_quota``), so two racing retries
cannot both append and an append is one store call.
"""

from __future__ import annotations

import logging

from domain.control_characters import printable
from domain.log_quota import quota_line
from domain.store import LOG_CHUNK_LIMIT, LogStore

log = logging.getLogger("cirrus.controller")

__all__ = ["DEFAULT_LOG_QUOTA_BYTES", "LogChunkTooLarge", "TaskLogWriter", "quota_line"]

DEFAULT_LOG_QUOTA_BYTES = 100 * 1024 * 1024
"""How many log bytes one task may keep, all its commands together, unless configured."""


class LogChunkTooLarge(Exception):
    """An ``AppendLogs`` chunk is over ``LOG_CHUNK_LIMIT``."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"a log chunk of {size} bytes is over the limit of {LOG_CHUNK_LIMIT} bytes (1 MiB); "
            "send smaller chunks"
        )


class TaskLogWriter:
    """Appends a task's log chunks to the store within the chunk limit and the task's quota."""

    def __init__(self, store: LogStore, quota_bytes: int = DEFAULT_LOG_QUOTA_BYTES) -> None:
        if quota_bytes < 1:
            raise ValueError(f"the log quota must be positive, got {quota_bytes}")
        self._store = store
        self.quota_bytes = quota_bytes

    async def append(
        self, task_id: str, command: str, data: bytes, offset: int | None = None
    ) -> int:
        """Keep what fits of ``data`` (``LogChunkTooLarge`` if over the chunk limit).

        Return the bytes the command's log holds afterwards.
        """
        if len(data) > LOG_CHUNK_LIMIT:
            raise LogChunkTooLarge(len(data))
        appended = await self._store.append_log_within_quota(
            task_id, command, data, offset, self.quota_bytes
        )
        if appended.gap:
            log.warning(
                "task %s command %s: a log chunk at offset %s leaves %d bytes missing",
                task_id,
                printable(command),
                offset,
                appended.gap,
            )
        if appended.quota_reached:
            log.warning(
                "task %s reached its log quota of %d bytes; dropping further output",
                task_id,
                self.quota_bytes,
            )
        return appended.size
