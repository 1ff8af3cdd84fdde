"""Wake-ups of held ``Poll`` calls: one event per waiting poll, grouped by worker.

A ``Poll`` with nothing to answer subscribes *before* it looks for work and waits on its ticket,
so that work queued between the look and the wait still wakes it; what the poll read with its
check-in, before subscribing, is looked at only if nothing was woken, offered or claimed in
this process meanwhile (``PollWaiters.changes``). Once its look found nothing,
the ticket keeps the scheduler's view of the worker (``PollTicket.view``). A newly queued task
then wakes only the poll of a worker that can take it, chosen for all held polls in one
decision (``SchedulerService.dispatch``, ``domain.scheduling.choose_workers``): the cost of a
task does not grow with the number of idle workers. Whatever else may give one worker work (a
dependency released, a task stopped, a cancel, a resume) wakes that worker's polls. A newer
``Poll`` of the same worker supersedes an older one that is still held (the worker gave up on
it), so that the older one never hands out tasks nobody will receive.

Several controller processes may share one database, and a worker's held ``Poll`` may be on a
different process than the request that queued its work. A ``WakeRelay`` carries wake-ups
between them: a worker's wake and the queued tasks no local poll could take (their ids and
labels) are published, and the other processes wake their own polls or dispatch those tasks
among them, doing nothing when none of their held workers has the labels. On PostgreSQL that
is LISTEN/NOTIFY (``adapters.storage.postgres_wakeups``); on SQLite, ``QueueWatch`` looks at
the queue every fraction of a second while polls are held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from domain.scheduling import WorkerView, labels_match
from domain.store import QueueSummary, StoreError, TaskQueue
from domain.wakeups import QueuedNotice, WakeRelay, WakeTarget

log = logging.getLogger("cirrus.controller")

QUEUE_WATCH_PERIOD_SECONDS = 0.5
"""How often ``QueueWatch`` looks for work another process queued (while polls are held)."""

QUEUE_WATCH_PAGE_SIZE = 256
"""Newly queued tasks ``QueueWatch`` reads per look."""


Dispatch = Callable[[Sequence[str]], Awaitable[None]]
"""Offers queued tasks (by id) to the local held polls: ``SchedulerService.dispatch_ids``."""


@dataclass(eq=False, slots=True)
class PollTicket:
    """One held ``Poll``: its wake-up event and why it should stop waiting."""

    worker_name: str
    event: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False
    closed: bool = False
    # The worker as the poll's last look found it (None while a look is under way), and the
    # tasks a dispatch chose this poll for since.
    view: WorkerView | None = None
    promised: list[str] = field(default_factory=list)

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
        self._dispatch: Dispatch | None = None
        self.count_wake: Callable[[], None] = lambda: None
        """Called for each held poll woken (each wake costs that poll a look at the queue)."""
        self.changes = 0
        """Counts what could give a worker work or take it away (a wake, relayed or not, an
        offer of queued tasks, a claim): a poll reads the store before it subscribes, and uses
        what it read only if this count did not move meanwhile (``note_change``)."""

    def note_change(self) -> None:
        """Count a change that a poll's earlier read of the store may not have seen."""
        self.changes += 1

    def relay_to(self, relay: WakeRelay) -> None:
        """Publish every wake through ``relay`` too (call ``run_relay`` to receive)."""
        self._relay = relay

    def dispatch_with(self, dispatch: Dispatch) -> None:
        """Offer the tasks other processes queued through ``dispatch``."""
        self._dispatch = dispatch

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

    def deliver(self, worker_name: str | None) -> None:
        """Wake local polls only: one worker's, or all for ``None`` (a relayed wake-up)."""
        self.note_change()
        if worker_name is None:
            for tickets in self._tickets.values():
                for ticket in tickets:
                    self.wake_ticket(ticket)
        else:
            for ticket in self._tickets.get(worker_name, set()):
                self.wake_ticket(ticket)

    def wake_ticket(self, ticket: PollTicket) -> None:
        """Wake one held poll (once: a poll already woken is not counted again)."""
        if not ticket.event.is_set():
            self.count_wake()
            ticket.event.set()

    def publish_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Tell the other processes of queued tasks no local poll could take."""
        if notices and self._relay is not None:
            self._relay.publish_queued(notices)

    def live_tickets(self) -> list[PollTicket]:
        """Return the held polls that may still hand out work, in subscription order."""
        return [t for tickets in self._tickets.values() for t in tickets if not t.done]

    async def deliver_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Offer tasks another process queued to the local polls, if any may take them.

        Nothing is read when no held worker has the labels of any of them (a poll still
        looking will see them itself).
        """
        # Before the filter: a poll between its read and its look has no view yet.
        self.note_change()
        if self._dispatch is None:
            return
        views = [t.view for t in self.live_tickets() if t.view is not None]
        wanted = [
            notice.task_id
            for notice in notices
            if any(labels_match(view.labels, notice.labels) for view in views)
        ]
        if wanted:
            await self._dispatch(wanted)

    def waiting_workers(self) -> list[str]:
        """Return the workers that have a held poll here."""
        return list(self._tickets)

    def busy_waiting_workers(self) -> list[str]:
        """Return the workers with a held poll here that may hold tasks (something to stop)."""
        return [
            name
            for name, tickets in self._tickets.items()
            if any(t.view is None or t.view.running_task_ids for t in tickets)
        ]

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

    Publishing is a no-op (the database is the message); every period, tasks queued since the
    last look are offered to the local polls (``deliver_queued``, which skips those already
    offered here) and a worker holding tasks whose tasks to stop grew is woken. Wake-ups of this
    process itself already arrived directly, so this only matters to several processes on one
    file. Idle workers hold no task, so their stop lists are not read.
    """

    def __init__(
        self, store: TaskQueue, period_seconds: float = QUEUE_WATCH_PERIOD_SECONDS
    ) -> None:
        self._store = store
        self._period = period_seconds
        self._queue = QueueSummary()
        self._last_sequence = 0
        self._stopping: dict[str, set[str]] = {}

    def publish(self, worker_name: str | None) -> None:
        """Nothing to send: other processes see the database change."""

    def publish_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Nothing to send: other processes see the database change."""

    async def run(self, target: WakeTarget) -> None:
        """Check the queue every period until cancelled."""
        while True:
            await asyncio.sleep(self._period)
            if not target.waiting_workers():
                continue
            try:
                await self.check_once(target, target.busy_waiting_workers())
            except StoreError as error:
                log.warning("cannot look at the task queue: %s", error)

    async def check_once(self, target: WakeTarget, workers: list[str]) -> None:
        """Look once: offer the tasks queued since the last look, and wake each of
        ``workers`` whose tasks to stop grew."""
        # The summary first: a queueing raises the latest queue time or the length.
        queue = await self._store.queue_summary()
        previous = self._queue
        if queue.length > previous.length or (queue.last_queued_at or 0.0) > (
            previous.last_queued_at or 0.0
        ):
            await self._offer_new(target)
        self._queue = queue
        for worker in workers:
            stopping = set(await self._store.tasks_to_stop_for(worker))
            if stopping - self._stopping.get(worker, set()):
                target.deliver(worker)
            self._stopping[worker] = stopping
        for gone in set(self._stopping) - set(workers):
            del self._stopping[gone]

    async def _offer_new(self, target: WakeTarget) -> None:
        # A re-queued task keeps its old sequence: after a lost worker, look from the start.
        after = self._last_sequence
        page = await self._store.queued_tasks(QUEUE_WATCH_PAGE_SIZE, after)
        if not page and after:
            page = await self._store.queued_tasks(QUEUE_WATCH_PAGE_SIZE, 0)
        if page:
            self._last_sequence = max(self._last_sequence, page[-1].sequence)
            await target.deliver_queued([QueuedNotice(task.id, task.spec.labels) for task in page])
