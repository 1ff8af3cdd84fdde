"""Wake-ups of held polls between controller processes on one PostgreSQL database.

``LISTEN``/``NOTIFY`` on one channel, each on a dedicated connection of its own (a listening
connection cannot run statements while it waits, and the store's pool must not lose one to a
listener). A payload is a worker's name, empty for "every worker", or ``QUEUED_PREFIX`` and a
JSON list of ``[task id, labels]`` pairs: queued tasks no poll of the sender could take, which
a receiver offers to its own polls only if one of its held workers has their labels. A process
ignores its own notifications (it woke its polls directly). After a lost connection the
listener connects again and wakes every local poll, as it may have missed notifications
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg
from psycopg import AsyncConnection

from adapters.storage.postgres_connection import Connection, describe_url
from domain.wakeups import QueuedNotice, WakeTarget

log = logging.getLogger("cirrus.controller")

CHANNEL = "cirrus_poll_wakeups"
"""The notification channel every controller process of one database shares."""

EVERYONE = ""
"""The payload that wakes every worker's polls."""

QUEUED_PREFIX = "\x01queued:"
"""Starts a payload of queued tasks (a worker name cannot hold a control character)."""

MAX_PAYLOAD_BYTES = 7000
"""NOTIFY payloads must stay under 8000 bytes: longer lists of tasks are split."""


CONNECT_TIMEOUT_SECONDS = 10
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0


def queued_payloads(notices: Sequence[QueuedNotice]) -> list[str]:
    """Return the payloads announcing ``notices``, each under ``MAX_PAYLOAD_BYTES``."""
    payloads: list[str] = []
    batch: list[list[object]] = []
    size = 0
    for notice in notices:
        entry: list[object] = [notice.task_id, dict(notice.labels)]
        entry_size = len(json.dumps(entry).encode()) + 1
        if batch and size + entry_size > MAX_PAYLOAD_BYTES:
            payloads.append(QUEUED_PREFIX + json.dumps(batch))
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        payloads.append(QUEUED_PREFIX + json.dumps(batch))
    return payloads


def parse_queued(payload: str) -> list[tuple[str, dict[str, str]]]:
    """Return the ``(task id, labels)`` pairs of a queued payload (empty if malformed)."""
    try:
        entries = json.loads(payload.removeprefix(QUEUED_PREFIX))
    except ValueError:
        return []
    if not isinstance(entries, list):
        return []
    return [
        (entry[0], {str(k): str(v) for k, v in entry[1].items()})
        for entry in entries
        if isinstance(entry, list)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], dict)
    ]


_Work = Callable[[Connection, WakeTarget], Awaitable[None]]


class PostgresWakeups:
    """A ``WakeRelay`` over PostgreSQL notifications; ``run`` it while the controller serves."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._where = describe_url(url)
        self._pending: set[str] = set()
        self._has_pending = asyncio.Event()
        self._own_pids: set[int] = set()

    def publish(self, worker_name: str | None) -> None:
        """Queue a notification; the sender coalesces what piles up meanwhile."""
        self._pending.add(EVERYONE if worker_name is None else worker_name)
        self._has_pending.set()

    def publish_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Queue notifications of tasks no local poll could take."""
        self._pending.update(queued_payloads(notices))
        self._has_pending.set()

    async def run(self, target: WakeTarget) -> None:
        """Listen and send until cancelled, connecting again after any failure."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._keep(self._listen, target))
            group.create_task(self._keep(self._send, target))

    async def _keep(self, work: _Work, target: WakeTarget) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                connection = await AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            except psycopg.Error as error:
                log.warning("wake-ups: cannot connect to %s: %s", self._where, error)
            else:
                delay = RETRY_FIRST_SECONDS
                try:
                    async with connection:
                        await work(connection, target)
                except psycopg.Error as error:
                    log.warning("wake-ups: connection to %s lost: %s", self._where, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _listen(self, connection: Connection, target: WakeTarget) -> None:
        await connection.execute(f"LISTEN {CHANNEL}")
        # Whatever was sent while no one listened is lost: let every held poll look again.
        target.deliver(None)
        async with contextlib.aclosing(connection.notifies()) as notifications:
            async for notification in notifications:
                if notification.pid in self._own_pids:
                    continue
                payload = notification.payload
                if payload.startswith(QUEUED_PREFIX):
                    await target.deliver_queued(
                        [QueuedNotice(task_id, labels) for task_id, labels in parse_queued(payload)]
                    )
                else:
                    target.deliver(None if payload == EVERYONE else payload)

    async def _send(self, connection: Connection, _target: WakeTarget) -> None:
        pid = connection.info.backend_pid
        self._own_pids.add(pid)
        try:
            while True:
                await self._has_pending.wait()
                self._has_pending.clear()
                # "Everyone" covers every worker's wake, but not the queued tasks' offers.
                batch = (
                    {EVERYONE, *(p for p in self._pending if p.startswith(QUEUED_PREFIX))}
                    if EVERYONE in self._pending
                    else set(self._pending)
                )
                self._pending.clear()
                try:
                    for payload in sorted(batch):
                        await connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                except BaseException:
                    # Sent again on the next connection; a wake-up too many is harmless.
                    self._pending |= batch
                    self._has_pending.set()
                    raise
        finally:
            self._own_pids.discard(pid)
