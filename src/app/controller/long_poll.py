"""Wake-ups of held ``Poll`` calls: one event per waiting poll, grouped by worker.

A ``Poll`` with nothing to answer subscribes *before* it looks for work and waits on its ticket,
so that work queued between the look and the wait still wakes it. Anything that may give a
worker something to do (a build submitted, a dependency released, a task re-queued, a cancel, a
resume) wakes the polls concerned, which then look again. A newer ``Poll`` of the same worker
supersedes an older one that is still held (the worker gave up on it), so that the older one
never hands out tasks nobody will receive.

Several controller processes may share one database, and a worker's held ``Poll`` may be on a
different process than the request that queued its work. A ``WakeRelay`` carries wake-ups
between them: every local wake is also published, and wake-ups of other processes are
delivered to the local polls. On PostgreSQL that is LISTEN/NOTIFY
(``adapters.storage.postgres_wakeups``); on SQLite, ``QueueWatch`` looks at the queue every
fraction of a second while polls are held.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from domain.store import ControllerStore, QueueSummary, StoreError

log = logging.getLogger("cirrus.controller")

QUEUE_WATCH_PERIOD_SECONDS = 0.5
"""How often ``QueueWatch`` looks for work another process queued (while polls are held)."""


class WakeTarget(Protocol):
    """Where a relay delivers the wake-ups of other processes (``PollWaiters``)."""

    def deliver(self, worker_name: str | None) -> None:
        """Wake the local polls of one worker, or all of them for ``None``."""
        ...

    def waiting_workers(self) -> list[str]:
        """Return the workers that have a held poll here."""
        ...


class WakeRelay(Protocol):
    """Carries wake-ups between controller processes that share one database."""

    def publish(self, worker_name: str | None) -> None:
        """Tell the other processes (without waiting): one worker, or all for ``None``."""
        ...

    async def run(self, target: WakeTarget) -> None:
        """Deliver the other processes' wake-ups to ``target`` until cancelled."""
        ...


@dataclass(eq=False, slots=True)
class PollTicket:
    """One held ``Poll``: its wake-up event and why it should stop waiting."""

    worker_name: str
    event: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False
    closed: bool = False

    @property
    def done(self) -> bool:
        """Return whether the poll must answer now without handing out work."""
        return self.superseded or self.closed

    def abandon(self) -> None:
        """Stop waiting and hand out nothing: the caller went away."""
        self.superseded = True
        self.event.set()

    async def wait(self, timeout_seconds: float) -> bool:
        """Wait until woken or ``timeout_seconds`` pass; return whether it was woken."""
        if timeout_seconds <= 0:
            return False
        try:
            async with asyncio.timeout(timeout_seconds):
                await self.event.wait()
        except TimeoutError:
            return False
        self.event.clear()
        return True


class PollWaiters:
    """The held polls of this controller process, by worker name."""

    def __init__(self) -> None:
        self._tickets: dict[str, set[PollTicket]] = {}
        self._closed = False
        self._relay: WakeRelay | None = None

    def relay_to(self, relay: WakeRelay) -> None:
        """Publish every wake through ``relay`` too (call ``run_relay`` to receive)."""
        self._relay = relay

    async def run_relay(self) -> None:
        """Deliver the wake-ups of other processes until cancelled (returns if none relays)."""
        if self._relay is not None:
            await self._relay.run(self)

    def subscribe(self, worker_name: str) -> PollTicket:
        """Register a new poll of ``worker_name``; older held polls of it are superseded."""
        ticket = PollTicket(worker_name, closed=self._closed)
        for older in self._tickets.get(worker_name, set()):
            older.superseded = True
            older.event.set()
        self._tickets.setdefault(worker_name, set()).add(ticket)
        return ticket

    def unsubscribe(self, ticket: PollTicket) -> None:
        """Forget a poll that answered."""
        tickets = self._tickets.get(ticket.worker_name)
        if tickets is None:
            return
        tickets.discard(ticket)
        if not tickets:
            del self._tickets[ticket.worker_name]

    def wake(self, worker_name: str) -> None:
        """Wake the held polls of one worker, here and in the processes the relay reaches."""
        self.deliver(worker_name)
        if self._relay is not None:
            self._relay.publish(worker_name)

    def wake_all(self) -> None:
        """Wake every held poll (new work may fit any worker), here and elsewhere."""
        self.deliver(None)
        if self._relay is not None:
            self._relay.publish(None)

    def deliver(self, worker_name: str | None) -> None:
        """Wake local polls only: one worker's, or all for ``None`` (a relayed wake-up)."""
        if worker_name is None:
            for tickets in self._tickets.values():
                for ticket in tickets:
                    ticket.event.set()
        else:
            for ticket in self._tickets.get(worker_name, set()):
                ticket.event.set()

    def waiting_workers(self) -> list[str]:
        """Return the workers that have a held poll here."""
        return list(self._tickets)

    def close(self) -> None:
        """Answer every held poll now and let later ones answer at once (shutting down)."""
        self._closed = True
        for tickets in self._tickets.values():
            for ticket in tickets:
                ticket.closed = True
                ticket.event.set()

    @property
    def waiting(self) -> int:
        """Return how many polls are held right now."""
        return sum(len(tickets) for tickets in self._tickets.values())


class QueueWatch:
    """A ``WakeRelay`` for SQLite: while polls are held, look at the queue periodically.

    Publishing is a no-op (the database is the message); every period, newly queued tasks wake
    every held poll and a newly cancelled task wakes its worker's. Wake-ups of this process
    itself already arrived directly, so this only matters to several processes on one file.
    """

    def __init__(
        self, store: ControllerStore, period_seconds: float = QUEUE_WATCH_PERIOD_SECONDS
    ) -> None:
        self._store = store
        self._period = period_seconds
        self._queue = QueueSummary()
        self._stopping: dict[str, set[str]] = {}

    def publish(self, worker_name: str | None) -> None:
        """Nothing to send: other processes see the database change."""

    async def run(self, target: WakeTarget) -> None:
        """Check the queue every period until cancelled."""
        while True:
            await asyncio.sleep(self._period)
            workers = target.waiting_workers()
            if not workers:
                continue
            try:
                await self.check_once(target, workers)
            except StoreError as error:
                log.warning("cannot look at the task queue: %s", error)

    async def check_once(self, target: WakeTarget, workers: list[str]) -> None:
        """Look once: wake all if a task was queued since the last look, and each of
        ``workers`` whose tasks to stop grew."""
        # The summary, not the tasks: a queueing raises the latest queue time or the length.
        queue = await self._store.queue_summary()
        previous = self._queue
        if queue.length > previous.length or (queue.last_queued_at or 0.0) > (
            previous.last_queued_at or 0.0
        ):
            target.deliver(None)
        self._queue = queue
        for worker in workers:
            stopping = set(await self._store.tasks_to_stop_for(worker))
            if stopping - self._stopping.get(worker, set()):
                target.deliver(worker)
            self._stopping[worker] = stopping
        for gone in set(self._stopping) - set(workers):
            del self._stopping[gone]
