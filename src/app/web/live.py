"""Live updates of the build and task pages over Server-Sent Events.

Each stream looks at the store every ``LIVE_INTERVAL_SECONDS``: what another controller on the
same database recorded shows as soon as what this one recorded. The look is shared: every
stream of one build (or task) in this process reads through one ``SharedReads`` entry, so a
hundred viewers of a build cost one read per interval. A task stream reads log bytes only when
the task's total log size grew. Streams end when the controller begins to shut down.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.web.log_view import LOG_PAGE_BYTES, ansi_to_html
from app.web.views import format_duration, status_class, task_seconds
from domain.store import BuildRecord, ControllerStore, TaskRecord

LIVE_INTERVAL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""
SKIP_AFTER_BYTES = 4 * LOG_PAGE_BYTES
"""A viewer further behind than this jumps to the log's tail (the page offers paging)."""


@dataclass(slots=True)
class _Entry:
    at: float = -1.0
    value: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SharedReads:
    """Reads of the store shared by the streams of one process, each fresh for an interval."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._entries: dict[tuple[str, str], _Entry] = {}

    async def get(self, key: tuple[str, str], read: Callable[[], Awaitable[Any]]) -> Any:
        """Return ``read()``'s value for ``key``, read again only if older than the interval."""
        entry = self._entries.setdefault(key, _Entry())
        async with entry.lock:
            now = time.monotonic()
            if now - entry.at >= self._max_age:
                entry.value, entry.at = await read(), now
            return entry.value

    def forget_older_than(self, seconds: float) -> None:
        """Drop entries nobody read for ``seconds`` (the pages closed)."""
        cutoff = time.monotonic() - seconds
        for key in [k for k, e in self._entries.items() if e.at < cutoff and not e.lock.locked()]:
            del self._entries[key]


def sse(event: str, data: Any) -> bytes:
    """Return one Server-Sent Event with JSON data."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def build_state(build: BuildRecord, now: float) -> dict[str, Any]:
    """Return what the build page updates live: the build's and each task's status."""
    return {
        "status": build.status.value,
        "statusClass": status_class(build.status.value),
        "tasks": {task.id: task_state(task, now) for task in build.tasks},
    }


def task_state(task: TaskRecord, now: float) -> dict[str, Any]:
    """Return what pages update live of one task."""
    results = {r.name: r.status.name for r in task.command_results}
    return {
        "status": task.status.value,
        "statusClass": status_class(task.status.value),
        "worker": task.worker or "",
        "duration": format_duration(task_seconds(task, now)) if task.stopped_at else "",
        "commands": {name: [status, status_class(status)] for name, status in results.items()},
    }


class LiveStreams:
    """The SSE streams of one controller app."""

    def __init__(self, store: ControllerStore, interval: float = LIVE_INTERVAL_SECONDS) -> None:
        self._store = store
        self._interval = interval
        self._reads = SharedReads(interval * 0.8)
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every stream (the controller shuts down)."""
        self._closing.set()

    async def _pause(self) -> bool:
        """Wait an interval; return whether streams go on."""
        try:
            await asyncio.wait_for(self._closing.wait(), self._interval)
        except TimeoutError:
            return True
        return False

    async def build_events(self, build_id: str) -> AsyncIterator[bytes]:
        """Yield a ``build`` event whenever the build's or a task's status changes."""
        last: dict[str, Any] | None = None
        quiet_since = time.monotonic()
        while True:
            build = await self._reads.get(
                ("build", build_id), lambda: self._store.get_build(build_id)
            )
            if build is None:
                yield sse("end", {})
                return
            state = build_state(build, time.time())
            if state != last:
                yield sse("build", state)
                last, quiet_since = state, time.monotonic()
                if build.status.is_final:
                    yield sse("end", {})
                    return
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            self._reads.forget_older_than(60.0)
            if not await self._pause():
                return

    async def list_events(self, build_ids: list[str]) -> AsyncIterator[bytes]:
        """Yield a ``builds`` event with the statuses of the listed builds that changed; end
        when all of them are final (the builds list)."""
        shown: dict[str, str] = {}
        quiet_since = time.monotonic()
        pending = list(build_ids)
        while pending:
            changed: dict[str, dict[str, str]] = {}
            for build_id in list(pending):
                read = functools.partial(self._store.get_build, build_id)
                build = await self._reads.get(("build", build_id), read)
                if build is None or build.status.is_final:
                    pending.remove(build_id)
                if build is not None and shown.get(build_id) != build.status.value:
                    shown[build_id] = build.status.value
                    changed[build_id] = {
                        "status": build.status.value,
                        "statusClass": status_class(build.status.value),
                    }
            if changed:
                yield sse("builds", changed)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            self._reads.forget_older_than(60.0)
            if not pending or not await self._pause():
                break
        yield sse("end", {})

    async def task_events(self, task_id: str, offsets: dict[str, int]) -> AsyncIterator[bytes]:
        """Yield ``task`` events on status changes and ``log`` events with the bytes appended
        to the commands of ``offsets`` after those offsets."""
        last: dict[str, Any] | None = None
        total = -1
        flushed = False  # the withheld end of a line was sent once the task ended
        quiet_since = time.monotonic()
        while True:
            task = await self._reads.get(("task", task_id), lambda: self._store.get_task(task_id))
            if task is None:
                yield sse("end", {})
                return
            final = task.status.is_final and task.stopped_at is not None
            size = await self._reads.get(
                ("log-size", task_id), lambda: self._store.task_log_size(task_id)
            )
            sent = False
            if size != total or (final and not flushed):
                total, flushed = size, final
                async for event in self._log_events(task_id, offsets, final):
                    yield event
                    sent = True
            state = task_state(task, time.time())
            if state != last:
                yield sse("task", state)
                last, sent = state, True
            if final and not sent:
                yield sse("end", {})
                return
            self._reads.forget_older_than(60.0)
            if sent:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            if not await self._pause():
                return

    async def _log_events(
        self, task_id: str, offsets: dict[str, int], final: bool
    ) -> AsyncIterator[bytes]:
        for command, offset in offsets.items():
            size = await self._store.log_size(task_id, command)
            if size <= offset:
                continue
            skipped = 0
            if size - offset > SKIP_AFTER_BYTES:
                skipped, offset = size - LOG_PAGE_BYTES - offset, size - LOG_PAGE_BYTES
            data = await self._store.read_log(task_id, command, offset, LOG_PAGE_BYTES)
            if not final and len(data) < LOG_PAGE_BYTES:
                # Whole lines only while the task runs: a colour code or a UTF-8 character
                # is never cut in two.
                data = data[: data.rfind(b"\n") + 1]
            if not data and not skipped:
                continue
            offsets[command] = offset + len(data)
            yield sse(
                "log",
                {
                    "command": command,
                    "end": offsets[command],
                    "skipped": skipped,
                    "html": str(ansi_to_html(data)),
                },
            )
