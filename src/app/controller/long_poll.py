"""Wake-ups of held ``Poll`` calls: one event per waiting poll, grouped by worker.

A ``Poll`` with nothing to answer subscribes *before* it looks for work and waits on its ticket,
so that work queued between the look and the wait still wakes it. Anything that may give a
worker something to do (a build submitted, a dependency released, a task re-queued, a cancel, a
resume) wakes the polls concerned, which then look again. A newer ``Poll`` of the same worker
supersedes an older one that is still held (the worker gave up on it), so that the older one
never hands out tasks nobody will receive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


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
        """Wake the held polls of one worker."""
        for ticket in self._tickets.get(worker_name, set()):
            ticket.event.set()

    def wake_all(self) -> None:
        """Wake every held poll (new work may fit any worker)."""
        for tickets in self._tickets.values():
            for ticket in tickets:
                ticket.event.set()

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
