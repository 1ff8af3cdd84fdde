"""Liveness of workers: which count as alive, and the sweep that declares silent ones lost.

A mixin of ``SchedulerService``: it shares the service's store, clock and accounting.
"""

from __future__ import annotations

import asyncio
import logging

from app.controller.poll_dispatch import PollDispatcher
from domain.build import TaskStatus
from domain.control_characters import printable
from domain.ports import Clock
from domain.scheduling import QueuedTask, is_alive
from domain.store import SchedulingStore, WorkerRecord
from domain.worker_capacity import queued_view

log = logging.getLogger("cirrus.controller")

STALL_SECONDS = 5.0
"""A liveness sweep whose store read takes longer than this, or that comes this much later than
due, finds the controller (or its database) back from an outage: silence counts afresh."""

WORKERS_BETWEEN_YIELDS = 200
"""Workers a sweep looks at between two turns of the event loop."""


class LivenessSweeps:
    """Worker liveness for ``SchedulerService``, which sets the attributes declared here."""

    _store: SchedulingStore
    _clock: Clock
    _dispatcher: PollDispatcher
    _missed: dict[str, int]
    _watching_since: float
    _store_failed: bool
    offline_after_seconds: float

    async def advance_build(self, build_id: str) -> None:
        """Schedule or skip a build's tasks (``SchedulerService.advance_build``)."""
        raise NotImplementedError

    def _changed(self) -> None:
        raise NotImplementedError

    def is_online(self, worker: WorkerRecord) -> bool:
        """Return whether a worker polled recently enough to count as alive (silence counting
        from the later of its last call and this controller's return from an outage)."""
        return is_alive(
            worker.last_seen, self._watching_since, self._clock.now(), self.offline_after_seconds
        )

    def watching_again(self) -> None:
        """Count every worker's silence from now: the controller or its database was away."""
        self._watching_since = self._clock.now()

    async def sweep(self) -> list[str]:
        """Declare workers that stopped polling lost and release their tasks; return their names.

        Never-started tasks go back to the queue, started ones fail, cancelled ones abort.
        """
        lost: list[str] = []
        requeued: list[QueuedTask] = []
        began = self._clock.monotonic()
        try:
            workers = await self._store.list_workers()
        except Exception:
            self._store_failed = True
            raise
        if self._store_failed or self._clock.monotonic() - began > STALL_SECONDS:
            # The database was away (or hung): workers could not be heard meanwhile.
            log.warning("the database is back; counting workers' silence from now")
            self._store_failed = False
            self.watching_again()
        for index, worker in enumerate(workers, 1):
            if index % WORKERS_BETWEEN_YIELDS == 0:
                # Polls waiting for a pickup go first: a big pool takes many milliseconds.
                await asyncio.sleep(0)
            if self.is_online(worker):
                continue
            released = await self._store.release_worker(worker.name)
            if not released:
                continue
            lost.append(worker.name)
            log.warning(
                "worker %s was lost; released %d task(s)", printable(worker.name), len(released)
            )
            for task in released:
                self._missed.pop(task.id, None)
                if task.status is TaskStatus.SCHEDULED:
                    requeued.append(queued_view(task))
            for build_id in dict.fromkeys(task.build_id for task in released):
                await self.advance_build(build_id)
        self._dispatcher.offer(requeued)
        if lost:
            self._changed()
        return lost

    async def run_sweeps(self, every_seconds: float) -> None:
        """Sweep forever, every ``every_seconds`` (cancel the task to stop)."""
        due = self._clock.monotonic() + every_seconds
        while True:
            await asyncio.sleep(max(0.0, due - self._clock.monotonic()))
            if self._clock.monotonic() - due > STALL_SECONDS:
                # This process was stopped or starved (SIGSTOP, a stalled event loop): it could
                # not hear workers meanwhile.
                log.warning("the liveness sweep is late; counting workers' silence from now")
                self.watching_again()
            due = self._clock.monotonic() + every_seconds
            try:
                await self.sweep()
            except Exception:
                log.exception("the liveness sweep failed; trying again later")
