"""A command's output on its way to the controller: masked, chunked, flushed, back-pressured.

Bytes pass through the task's ``SecretMasker`` (which holds back a possible secret prefix across
chunk boundaries), gather into ``AppendLogs`` chunks (128 KiB here, under the protocol's 1 MiB
cap: each chunk in flight exists several times over, raw, base64 and as the HTTP body, so
smaller chunks keep the worker's memory flat at no measurable cost in speed), and leave through the
upstream's ordered outbox. Each chunk carries its byte offset in the command's (masked) log, so
that a chunk retried after a timeout whose first attempt did arrive is applied once. At most
``max_in_flight`` chunks wait in the outbox: a further ``write`` waits until one is delivered,
which stalls the command's pipe instead of growing memory, so a task printing hundreds of MB
stays within a few MB.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from app.worker.outbox import Outbox
from app.worker.retry import Sleep
from domain.masking import SecretMasker
from domain.ports import ControllerClient
from domain.protocol import TaskRef

MAX_CHUNK = 128 * 1024
FLUSH_INTERVAL = 1.0


def _no_warning(count: int) -> None:
    """Say nothing about secrets too short to mask (a caller without the worker's log)."""


class CommandLog:
    """``OutputSink`` of one command: ``write`` the output, then ``close`` once it ended."""

    def __init__(
        self,
        outbox: Outbox,
        task: TaskRef,
        command_name: str,
        secrets: tuple[str, ...] = (),
        *,
        chunk_size: int = MAX_CHUNK,
        max_in_flight: int = 2,
        flush_interval: float | None = FLUSH_INTERVAL,
        sleep: Sleep = asyncio.sleep,
        warn_unmaskable: Callable[[int], None] = _no_warning,
    ) -> None:
        self._outbox = outbox
        self._task = task
        self._command = command_name
        self._masker = SecretMasker(secrets)
        # Left visible (too short to mask): say so in the worker's log, once per process (the
        # worker passes its log's secret registry, which remembers the warning).
        warn_unmaskable(self._masker.unmaskable)
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._send_lock = asyncio.Lock()
        self._sleep = sleep
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._offset = 0  # where the next chunk starts in the log as sent

    async def write(self, data: bytes) -> None:
        """Take the next output bytes; may wait while earlier chunks are undelivered."""
        if self._closed or not data:
            return
        self._buffer += self._masker.feed(data)
        self._start_flusher()
        while len(self._buffer) >= self._chunk_size:
            await self._send_full_chunks()

    async def line(self, text: str) -> None:
        """Write one line of the worker's own (e.g. an unsupported instruction)."""
        await self.write(text.encode("utf-8") + b"\n")

    async def flush(self) -> None:
        """Send what is buffered now (the masker may still hold back a possible secret prefix)."""
        async with self._send_lock:
            while self._buffer:
                await self._send_next()

    async def close(self) -> None:
        """End of output: queue everything left (waiting only for a free slot, as ``write``).

        It does not wait for the chunks' delivery: the outbox delivers a task's reports in the
        order they were queued, so the command's final update, queued next, still reaches the
        controller after its last byte, and it can leave merged with the updates that follow
        instead of one round trip later. During an outage the task's next commands run on
        meanwhile (their own writes stall once their chunks fill their slots), so up to
        ``max_in_flight`` chunks of each ended command wait in the outbox.
        """
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self._buffer += self._masker.flush()
        await self.flush()

    async def _send_full_chunks(self) -> None:
        async with self._send_lock:
            while len(self._buffer) >= self._chunk_size:
                await self._send_next()

    async def _send_next(self) -> None:
        """Queue the buffer's next chunk once a slot is free.

        The chunk leaves the buffer only after the slot is taken, and queueing it cannot be
        interrupted: cancelling a wait for a slot (``close`` stopping the flusher during an
        outage, a cancelled task) leaves every byte in the buffer, where ``close`` finds it.
        """
        await self._slots.acquire()
        chunk = bytes(self._buffer[: self._chunk_size])
        del self._buffer[: self._chunk_size]
        if not chunk:  # emptied by another sender while we waited
            self._slots.release()
            return
        task, name, offset = self._task, self._command, self._offset
        self._offset += len(chunk)

        async def append(client: ControllerClient) -> object:
            # Every attempt of this chunk carries the same offset.
            return await client.append_logs(task, name, chunk, offset)

        future = self._outbox.send(f"AppendLogs {task.task_id}/{name}", append, task.task_id)
        future.add_done_callback(self._chunk_done)

    def _chunk_done(self, _future: asyncio.Future[bool]) -> None:
        self._slots.release()

    def _start_flusher(self) -> None:
        if self._flusher is None and self._flush_interval is not None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        assert self._flush_interval is not None
        while True:
            await self._sleep(self._flush_interval)
            await self.flush()
