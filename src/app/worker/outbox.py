"""Per-upstream outbox of reports (task status, command updates, logs), ordered per lane.

Reports of one lane (one task, or the worker's own reports) leave in the order they were sent,
one at a time, each retried until delivered: a controller outage of minutes delays them but
drops nothing. Different lanes deliver side by side, so that one task's reports never wait
behind another's round trips: with several slots busy, a single queue would make every task
wait for the calls of all the others. A definite refusal (a Twirp 4xx other than a lost session)
is logged and the report dropped, since repeating it cannot succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.worker.upstream import Upstream
from domain.errors import DefiniteControllerError
from domain.ports import ControllerClient

log = logging.getLogger("cirrus.worker")

ReportCall = Callable[[ControllerClient], Awaitable[object]]

WORKER_LANE = ""
"""The lane of reports that concern the worker rather than one task (e.g. ``UpdateStatus``)."""

MAX_PARALLEL_LANES = 4
"""Lanes delivering at once. A few overlap the round trips; more only grow the HTTP client's
connection pool, whose bookkeeping on every request then costs more than the overlap gains."""


@dataclass(slots=True)
class Report:
    """One queued call; ``delivered`` resolves True once delivered, False if refused."""

    what: str
    call: ReportCall
    delivered: asyncio.Future[bool]


class Outbox:
    """Delivers reports to one upstream, in order within each lane; ``run`` delivers them."""

    def __init__(self, upstream: Upstream, *, max_parallel: int = MAX_PARALLEL_LANES) -> None:
        self.upstream = upstream
        self._max_parallel = max_parallel
        self._lanes: dict[str, deque[Report]] = {}
        self._waiting_lanes: deque[str] = deque()
        self._lane_runs: dict[str, asyncio.Task[None]] = {}
        self._not_empty = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()

    @property
    def pending(self) -> int:
        """Reports sent but not yet delivered or refused."""
        return sum(len(queue) for queue in self._lanes.values())

    def send(self, what: str, call: ReportCall, lane: str = WORKER_LANE) -> asyncio.Future[bool]:
        """Queue a report behind every earlier one of ``lane``; return a future of its delivery."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            self._waiting_lanes.append(lane)
        queue.append(Report(what, call, future))
        self._empty.clear()
        self._not_empty.set()
        return future

    async def drained(self) -> None:
        """Wait until every queued report was delivered or refused."""
        await self._empty.wait()

    async def run(self) -> None:
        """Deliver reports forever (until cancelled): one coroutine per lane with reports."""
        try:
            while True:
                if not self._waiting_lanes or len(self._lane_runs) >= self._max_parallel:
                    self._not_empty.clear()
                    await self._not_empty.wait()
                    continue
                lane = self._waiting_lanes.popleft()
                self._lane_runs[lane] = asyncio.create_task(self._run_lane(lane))
        finally:
            runs = list(self._lane_runs.values())
            for run in runs:
                run.cancel()
            for run in runs:
                with contextlib.suppress(asyncio.CancelledError):
                    await run

    async def _run_lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                report = queue[0]
                delivered = await self._deliver(report)
                queue.popleft()
                if not report.delivered.done():
                    report.delivered.set_result(delivered)
        finally:
            del self._lane_runs[lane]
            self._not_empty.set()  # a place for a waiting lane
            if queue:
                # Cancelled (the worker stops): the rest waits for the next ``run``.
                self._waiting_lanes.append(lane)
            else:
                del self._lanes[lane]
                if not self._lanes:
                    self._empty.set()

    async def _deliver(self, report: Report) -> bool:
        try:
            await self.upstream.call(report.what, report.call)
        except DefiniteControllerError as error:
            endpoint = self.upstream.endpoint
            log.error("%s refused by %s: %s; not retried", report.what, endpoint, error)
            return False
        return True
