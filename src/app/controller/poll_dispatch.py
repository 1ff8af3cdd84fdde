"""Offering newly queued tasks to held polls: one scheduling decision wakes only takers.

A held ``Poll`` whose last look found nothing keeps the scheduler's view of its worker
(``PollTicket.view``). When tasks enter the queue, ``PollDispatcher.offer`` chooses among those
views, in one call of ``domain.scheduling.choose_workers``, the worker each task goes to, and
wakes only those polls; every other poll sleeps on. The woken poll then claims from the queue
as any poll does (FIFO, the assignment lock, the store's atomic claim), so a choice made on a
stale view can cost a wasted look but never a wrong assignment. A task the chosen poll did not
take is offered again (``reoffer``), and tasks no local poll can take are published for the
other controller processes of the database (``WakeRelay.publish_queued``).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.controller.long_poll import PollTicket, PollWaiters
from domain.scheduling import QueuedTask, choose_workers, with_task
from domain.store import TaskQueue
from domain.wakeups import QueuedNotice


class PollDispatcher:
    """Wakes, for each newly queued task, the one held poll chosen to take it."""

    def __init__(self, store: TaskQueue, waiters: PollWaiters) -> None:
        self._store = store
        self._waiters = waiters
        waiters.dispatch_with(self.offer_ids)

    def offer(self, tasks: Sequence[QueuedTask], *, publish: bool = True) -> None:
        """Offer queued ``tasks`` to the local held polls; publish those none can take.

        Runs without awaiting, so no look at the queue interleaves with the decision. A poll
        whose look is under way (no view yet) is woken to look once more: its look may have
        read the queue before these tasks were in it.
        """
        if not tasks:
            return
        self._waiters.note_change()
        ready: dict[str, PollTicket] = {}
        promised: set[str] = set()
        for ticket in self._waiters.live_tickets():
            promised.update(ticket.promised)
            if ticket.view is None:
                self._waiters.wake_ticket(ticket)
            else:
                ready.setdefault(ticket.view.name, ticket)
        fresh = [task for task in tasks if task.id not in promised]
        views = [ticket.view for ticket in ready.values() if ticket.view is not None]
        # Only a worker with a task's labels can take it: the others (a big idle pool of other
        # labels) leave the decision after one C-level subset test each, a seventh of what
        # ``choose_workers`` spends on each (0.14 against 0.94 ms for 1,000 views).
        wanted = list({tuple(sorted(t.labels.items())): t.labels.items() for t in fresh}.values())
        if len(wanted) == 1:
            views = [view for view in views if wanted[0] <= view.labels.items()]
        else:
            views = [view for view in views if any(ls <= view.labels.items() for ls in wanted)]
        chosen = choose_workers(fresh, views)
        for task in fresh:
            name = chosen.get(task.id)
            if name is None:
                continue
            ticket = ready[name]
            assert ticket.view is not None
            ticket.view = with_task(ticket.view, task)
            ticket.promised.append(task.id)
            self._waiters.wake_ticket(ticket)
        if publish:
            self._waiters.publish_queued(
                [QueuedNotice(task.id, task.labels) for task in fresh if task.id not in chosen]
            )

    async def offer_ids(self, task_ids: Sequence[str]) -> None:
        """Offer the tasks of ``task_ids`` that are still queued (queued by another process:
        not published again)."""
        self.offer(await self._still_queued(task_ids), publish=False)

    async def reoffer(self, task_ids: Sequence[str]) -> None:
        """Offer again tasks a chosen poll did not take, if they are still queued."""
        self.offer(await self._still_queued(task_ids))

    async def _still_queued(self, task_ids: Sequence[str]) -> list[QueuedTask]:
        if not task_ids:
            return []
        # One read for all of them, offered in the order given.
        queued = {task.id: task for task in await self._store.still_queued(task_ids)}
        return [queued[i].as_queued() for i in dict.fromkeys(task_ids) if i in queued]
