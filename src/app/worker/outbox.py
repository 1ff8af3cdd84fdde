"""Per-upstream ordered outbox of reports (task status, command updates, logs).

Reports leave in the order they were sent, one at a time, each retried until delivered: a
controller outage of minutes delays them but drops nothing. A definite refusal (a Twirp 4xx
other than a lost session) is logged and the report dropped, since repeating it cannot succeed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.worker.upstream import Upstream
from domain.errors import DefiniteControllerError
from domain.ports import ControllerClient

log = logging.getLogger("cirrus.worker")

ReportCall = Callable[[ControllerClient], Awaitable[object]]


@dataclass(slots=True)
class Report:
    """One queued call; ``delivered`` resolves True once delivered, False if refused."""

    what: str
    call: ReportCall
    delivered: asyncio.Future[bool]


class Outbox:
    """Delivers reports to one upstream in order; ``run`` is the delivering coroutine."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._queue: deque[Report] = deque()
        self._not_empty = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()

    @property
    def pending(self) -> int:
        """Reports sent but not yet delivered or refused."""
        return len(self._queue)

    def send(self, what: str, call: ReportCall) -> asyncio.Future[bool]:
        """Queue a report behind every earlier one; return a future of its delivery."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(Report(what, call, future))
        self._empty.clear()
        self._not_empty.set()
        return future

    async def drained(self) -> None:
        """Wait until every queued report was delivered or refused."""
        await self._empty.wait()

    async def run(self) -> None:
        """Deliver reports forever (until cancelled), oldest first."""
        while True:
            if not self._queue:
                self._not_empty.clear()
                self._empty.set()
                await self._not_empty.wait()
                continue
            report = self._queue[0]
            delivered = await self._deliver(report)
            self._queue.popleft()
            if not report.delivered.done():
                report.delivered.set_result(delivered)

    async def _deliver(self, report: Report) -> bool:
        try:
            await self.upstream.call(report.what, report.call)
        except DefiniteControllerError as error:
            endpoint = self.upstream.endpoint
            log.error("%s refused by %s: %s; not retried", report.what, endpoint, error)
            return False
        return True
