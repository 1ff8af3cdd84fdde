"""What the controller keeps of a task's ``AppendLogs``: bounded chunks, a per-task quota.

A chunk over ``LOG_CHUNK_LIMIT`` (1 MiB, the limit of PROTOCOL.md) is refused. A task's logs
together keep at most ``quota_bytes``: the chunk that crosses the quota is cut at it, one line
saying so follows, and later chunks are acknowledged but dropped, so that a runaway command
neither fills the database nor makes its worker retry forever.

A chunk sent with its ``offset`` (docs/polling-and-logs.md, "AppendLogs offset") adds only the
bytes beyond what the command's log holds, so a chunk retried after a timeout is applied once;
the store re-checks this atomically, so two racing retries cannot both append.
"""

from __future__ import annotations

import logging

from domain.control_characters import printable
from domain.log_offsets import plan_append
from domain.store import LOG_CHUNK_LIMIT, LogStore

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
        held = 0 if offset is None else await self._store.log_size(task_id, command)
        plan = plan_append(held, offset, len(data))
        if plan.gap:
            log.warning(
                "task %s command %s: a log chunk at offset %s leaves %d bytes missing",
                task_id,
                printable(command),
                offset,
                plan.gap,
            )
        if plan.fresh(len(data)) == 0:
            return await self._size(task_id, command, held, offset)
        stored = await self._store.task_log_size(task_id)
        room = self.quota_bytes - stored
        if room <= 0:
            # The quota line was written when the quota was reached.
            return await self._size(task_id, command, held, offset)
        if plan.fresh(len(data)) <= room:
            return await self._store.append_log(task_id, command, data, offset)
        kept = data[: plan.skip + room]
        log.warning(
            "task %s reached its log quota of %d bytes; dropping further output",
            task_id,
            self.quota_bytes,
        )
        # Sent at the chunk's offset too: a retry of the crossing chunk finds it all held.
        return await self._store.append_log(
            task_id, command, kept + quota_line(self.quota_bytes, kept.endswith(b"\n")), offset
        )

    async def _size(self, task_id: str, command: str, held: int, offset: int | None) -> int:
        """The command's log size, read only if ``held`` was not (no offset was sent)."""
        return held if offset is not None else await self._store.log_size(task_id, command)
