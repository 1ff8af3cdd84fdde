"""The controller's metrics: what its gauges report, why tasks wait, and keeping both current.

The scheduler counts assignments (with their pickup latency) as it hands tasks out. Everything
else comes from a ``MetricsRefresher``, which reads the queue and the workers from the store
after scheduling passes (coalesced) and on a timer, publishes an immutable ``ControllerGauges``
and counts each queued task once per reason it is seen waiting for. Gauges describe the shared
store, so with several controller processes on one database every process reports the same
queue: aggregate them with ``max``, not ``sum``; the counters are per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from domain.controller_telemetry import ControllerGauges, ControllerMetrics, QueueGauge
from domain.scheduling import WaitKind, WorkerView, why_pending
from domain.store import TaskQueue, TaskRecord

if TYPE_CHECKING:
    from app.controller.scheduler_service import SchedulerService

log = logging.getLogger("cirrus.controller")

WAIT_CATEGORIES: tuple[str, ...] = tuple(kind.value for kind in WaitKind)
"""Every category, each reported (0 when no task waits for it)."""

MAX_REMEMBERED_LABEL_SETS = 256
"""Emptied queues keep reporting 0 (not vanish) for this many label sets, the latest kept."""

DEFAULT_REFRESH_SECONDS = 15.0
"""How often the refresher reads the store when nothing asked it to."""

MIN_REFRESH_GAP_SECONDS = 1.0
"""Requests within this long of a refresh are served by one refresh (polls come in bursts)."""

REFRESH_COST_FACTOR = 100.0
"""Refreshes asked for are at least this many times their own duration apart (a big pool)."""

REQUEST_SETTLE_SECONDS = 0.25
"""How long an asked-for refresh waits first: the pickup that asked goes ahead of its reads."""


class NullControllerMetrics:
    """Implements ``ControllerMetrics`` by ignoring every call; no ``/metrics``."""

    @property
    def prometheus_enabled(self) -> bool:
        """Never."""
        return False

    def prometheus_text(self) -> bytes:
        """Nothing."""
        return b""

    def task_assigned(self, worker: str, pickup_latency_seconds: float | None) -> None:
        """Ignore."""

    def task_waiting(self, reason: str) -> None:
        """Ignore."""

    def poll_woken(self) -> None:
        """Ignore."""

    def publish_gauges(self, gauges: ControllerGauges) -> None:
        """Ignore."""


def labels_key(labels: Mapping[str, str]) -> str:
    """Return a label set as a stable attribute value: ``k=v,k=v`` sorted by key."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def controller_gauges(
    queued: Sequence[TaskRecord],
    workers: Sequence[WorkerView],
    reasons: Mapping[str, str],
    also_report: Iterable[str] = (),
) -> ControllerGauges:
    """Return the gauges of a queue and a pool of workers.

    ``queued`` are the waiting tasks, each entered the queue at its ``updated_at`` (a queued task
    is changed only by what queued it); ``reasons`` maps their ids to wait categories;
    ``also_report`` names label sets to report with length 0 when none of their tasks waits.
    """
    lengths: dict[str, int] = dict.fromkeys(also_report, 0)
    oldest: dict[str, float] = {}
    for task in queued:
        key = labels_key(task.spec.labels)
        lengths[key] = lengths.get(key, 0) + 1
        oldest[key] = min(oldest.get(key, task.updated_at), task.updated_at)
    waiting: dict[str, int] = dict.fromkeys(WAIT_CATEGORIES, 0)
    for category in reasons.values():
        waiting[category] = waiting.get(category, 0) + 1
    return ControllerGauges(
        queues=tuple(
            QueueGauge(key, length, oldest.get(key)) for key, length in sorted(lengths.items())
        ),
        waiting_by_reason=waiting,
        workers_online=sum(1 for w in workers if w.online and not w.paused),
        workers_paused=sum(1 for w in workers if w.online and w.paused),
        workers_offline=sum(1 for w in workers if not w.online),
    )


class MetricsRefresher:
    """Reads the queue and workers, publishes ``ControllerGauges`` and counts wait reasons."""

    def __init__(
        self,
        store: TaskQueue,
        scheduler: SchedulerService,
        metrics: ControllerMetrics,
        *,
        min_gap_seconds: float = MIN_REFRESH_GAP_SECONDS,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._metrics = metrics
        self._min_gap = min_gap_seconds
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        # The wait category each queued task was last seen with: a task counts once per reason.
        self._seen: dict[str, str] = {}
        # Label sets that had a queue, least recently non-empty first.
        self._label_sets: dict[str, None] = {}

    def request(self) -> None:
        """Ask for a refresh soon (scheduling changed something); cheap, never blocks."""
        self._wanted.set()

    async def refresh(self) -> ControllerGauges:
        """Read the store now, publish the gauges and count new waits; return the gauges."""
        async with self._lock:
            queued = await self._store.queued_tasks()
            # What each worker holds matters only to why a queued task waits; reading it is
            # one query per worker, too much to repeat after every task of a big pool.
            views = await self._scheduler.worker_views(
                held=bool(queued), for_labels=[task.spec.labels for task in queued]
            )
            reasons = {task.id: why_pending(task.as_queued(), views).kind.value for task in queued}
            for task_id, category in reasons.items():
                if self._seen.get(task_id) != category:
                    self._metrics.task_waiting(category)
            self._seen = reasons
            for task in queued:
                key = labels_key(task.spec.labels)
                self._label_sets.pop(key, None)
                self._label_sets[key] = None
            while len(self._label_sets) > MAX_REMEMBERED_LABEL_SETS:
                del self._label_sets[next(iter(self._label_sets))]
            gauges = controller_gauges(queued, views, reasons, self._label_sets)
            self._metrics.publish_gauges(gauges)
            return gauges

    async def run(self, every_seconds: float = DEFAULT_REFRESH_SECONDS) -> None:
        """Refresh when asked (at most once per gap) and every ``every_seconds``; cancel to stop."""
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), every_seconds)
            except TimeoutError:
                pass
            else:
                # Asked for by a scheduling change, most often a task being handed out: reading
                # a big pool at that moment would hold the store's thread while that pickup's
                # calls wait behind it (issue 18's pickup p99).
                await asyncio.sleep(REQUEST_SETTLE_SECONDS)
            self._wanted.clear()
            began = asyncio.get_running_loop().time()
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing the controller's metrics failed; trying again later")
            # A refresh reads every worker: with a big pool it costs enough that, repeated after
            # each burst of tasks, it would delay their pickups. It may take ~1 % of the time,
            # but the gauges are never older than ``every_seconds``.
            took = asyncio.get_running_loop().time() - began
            await asyncio.sleep(min(every_seconds, max(self._min_gap, REFRESH_COST_FACTOR * took)))
