"""Per-upstream outbox of reports (task status, command updates, logs), ordered per lane.

Reports of one lane (one task, or the worker's own reports) leave in the order they were sent,
one at a time, each retried until delivered: a controller outage of minutes delays them but
drops nothing. Different lanes deliver side by side, so that one task's reports never wait
behind another's round trips: with several slots busy, a single queue would make every task
wait for the calls of all the others. A definite refusal (a Twirp 4xx other than a lost session)
is logged and the report dropped, since repeating it cannot succeed.

Command updates queued back to back in a lane leave as one ``ReportCommandUpdates`` call (its
request carries a list): a busy worker, whose lanes wait their turn, saves round trips that way,
and the controller still sees every update in order. A lane whose last queued reports are command
updates lingers a moment before it delivers them (``UPDATE_LINGER``), without holding one of the
delivery places meanwhile, so that a quick command's ``EXECUTING`` leaves with its final update
instead of in a call of its own; any other report queued behind ends the linger at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from app.worker.upstream import Upstream
from domain.errors import DefiniteControllerError
from domain.ports import ControllerClient
from domain.protocol import CommandResult, TaskRef

log = logging.getLogger("cirrus.worker")

ReportCall = Callable[[ControllerClient], Awaitable[object]]

WORKER_LANE = ""
"""The lane of reports that concern the worker rather than one task (e.g. ``UpdateStatus``)."""

MAX_PARALLEL_LANES = 4
"""Lanes delivering at once. A few overlap the round trips; more only grow the HTTP client's
connection pool, whose bookkeeping on every request then costs more than the overlap gains."""

MAX_MERGED_UPDATES = 64
"""Command updates one merged ``ReportCommandUpdates`` carries at most."""

UPDATE_LINGER = 0.05
"""Seconds a lane waits, at most, for more command updates before it delivers the ones it holds.

On a busy worker (8 slots on 2 cores, benchmarks/controller_bench.py) a trivial command such as
``script: true`` ends 15-70 ms after its ``EXECUTING`` was queued, since the event loop serves
the other tasks meanwhile: a 5 ms linger merged its updates for 1 task in 10, 20 ms for 1 in 3,
50 ms for 24 in 25, saving one round trip of a task's eight. A long command still shows
``EXECUTING`` at the controller 50 ms after it began. Only command updates at the end of a lane
linger, once per batch: a report of another kind behind them (a log chunk,
``ReportAgentFinished``, ``TaskStopped``) ends the wait at once, and none of those ever waits."""


@dataclass(slots=True)
class Report:
    """One queued call; ``delivered`` resolves True once delivered, False if refused."""

    what: str
    call: ReportCall
    delivered: asyncio.Future[bool]
    # Set on a ``ReportCommandUpdates``, which may leave merged with its neighbours.
    updates: tuple[TaskRef, tuple[CommandResult, ...]] | None = None
    # Set once its lane lingered with it at the head: a batch lingers once at most.
    lingered: bool = False


def _updates_call(ref: TaskRef, results: tuple[CommandResult, ...]) -> ReportCall:
    async def update(client: ControllerClient) -> object:
        await client.report_command_updates(ref, results)
        return None

    return update


def _batch(queue: deque[Report]) -> list[Report]:
    """The head of ``queue``, with the command updates of the same task queued right after it."""
    head = queue[0]
    batch = [head]
    if head.updates is None:
        return batch
    count = len(head.updates[1])
    for report in itertools.islice(queue, 1, None):
        if report.updates is None or report.updates[0] != head.updates[0]:
            break
        count += len(report.updates[1])
        if count > MAX_MERGED_UPDATES:
            break
        batch.append(report)
    return batch


def _may_grow(queue: deque[Report]) -> bool:
    """Whether the head's batch holds only command updates, all of ``queue``, below the limit."""
    batch = _batch(queue)
    if batch[0].updates is None or len(batch) < len(queue):
        return False
    return sum(len(report.updates[1]) for report in batch if report.updates) < MAX_MERGED_UPDATES


def _merged(batch: list[Report]) -> Report:
    """One report delivering every update of ``batch``, in order."""
    ref = batch[0].updates[0] if batch[0].updates else None
    assert ref is not None  # only command updates are batched
    results = tuple(r for report in batch if report.updates for r in report.updates[1])
    what = f"ReportCommandUpdates {ref.task_id} ({len(results)} updates)"
    return Report(what, _updates_call(ref, results), batch[0].delivered, (ref, results))


class Outbox:
    """Delivers reports to one upstream, in order within each lane; ``run`` delivers them."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        max_parallel: int = MAX_PARALLEL_LANES,
        linger: float = UPDATE_LINGER,
    ) -> None:
        self.upstream = upstream
        self._max_parallel = max_parallel
        self._linger = linger
        self._lanes: dict[str, deque[Report]] = {}
        self._waiting_lanes: deque[str] = deque()
        self._lane_runs: dict[str, asyncio.Task[None]] = {}
        # Lanes lingering for more command updates, each with the timer that ends the wait.
        self._parked: dict[str, asyncio.TimerHandle] = {}
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
        return self._queue(lane, Report(what, call, future))

    def send_command_updates(
        self, ref: TaskRef, updates: Sequence[CommandResult]
    ) -> asyncio.Future[bool]:
        """Queue ``ReportCommandUpdates`` in the task's lane; neighbours may leave as one call."""
        results = tuple(updates)
        names = ", ".join(f"{result.name} {result.status.name}" for result in results)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        what = f"ReportCommandUpdates {ref.task_id}/{names}"
        return self._queue(
            ref.task_id, Report(what, _updates_call(ref, results), future, (ref, results))
        )

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

    def _queue(self, lane: str, report: Report) -> asyncio.Future[bool]:
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            self._waiting_lanes.append(lane)
        queue.append(report)
        self._empty.clear()
        self._not_empty.set()
        if lane in self._parked and not _may_grow(queue):
            self._unpark(lane)  # its batch cannot grow any more: waiting gains nothing
        return report.delivered

    def _park(self, lane: str, head: Report) -> None:
        """Let ``lane`` wait ``linger`` seconds at most for more updates, holding no place."""
        head.lingered = True
        timer = asyncio.get_running_loop().call_later(self._linger, self._unpark, lane)
        self._parked[lane] = timer

    def _unpark(self, lane: str) -> None:
        """End ``lane``'s wait: it queues for a delivery place again."""
        timer = self._parked.pop(lane, None)
        if timer is not None:
            timer.cancel()
            self._waiting_lanes.append(lane)
            self._not_empty.set()

    async def _run_lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        parked = False
        try:
            while queue:
                if self._linger > 0 and not queue[0].lingered and _may_grow(queue):
                    self._park(lane, queue[0])
                    parked = True
                    return
                batch = _batch(queue)
                delivered = await self._deliver(batch[0] if len(batch) == 1 else _merged(batch))
                for report in batch:
                    queue.popleft()
                    if not report.delivered.done():
                        report.delivered.set_result(delivered)
        finally:
            del self._lane_runs[lane]
            self._not_empty.set()  # a place for a waiting lane
            if parked:
                pass  # ``_unpark`` queues it for a place again
            elif queue:
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
