"""The controller's scheduling shell: ``domain.scheduling`` decides, the store remembers.

It hands queued tasks to polling workers (claimed atomically in the store, so that several
controller processes never give one task twice), turns worker reports into task statuses,
releases dependants, and declares silent workers lost. Newly queued tasks wake only the held
poll chosen to take each (``PollDispatcher``); whatever else may give one worker work wakes its
held ``Poll`` through ``PollWaiters``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from app.controller.liveness import LivenessSweeps
from app.controller.long_poll import PollTicket, PollWaiters
from app.controller.metrics import MetricsRefresher, NullControllerMetrics
from app.controller.poll_dispatch import PollDispatcher
from domain.build import BuildSpec, TaskStatus, counted_status
from domain.control_characters import printable
from domain.controller_telemetry import ControllerMetrics
from domain.ports import Clock
from domain.protocol import CommandResult
from domain.rerun import split_attempts
from domain.scheduling import (
    PendingReason,
    QueuedTask,
    WorkerView,
    advance_dependencies,
    assign,
    labels_match,
    why_pending,
)
from domain.store import (
    SchedulingStore,
    TaskAssignment,
    TaskRecord,
    TaskStop,
    WorkerCheckIn,
    WorkerRecord,
    lost_worker_message,
)
from domain.task_outcome import released_from, stopped_status
from domain.worker_capacity import can_take_more, queued_view, task_resources, with_tasks

log = logging.getLogger("cirrus.controller")

MISSED_POLLS_BEFORE_LOST = 2
"""Polls in a row that must leave out a task the worker holds before the task counts as lost.

A worker lists every task it accepted until its ``TaskStopped`` was delivered, so one poll
without the task already means the worker lost it (it restarted, or never got the answer that
handed it out); the second poll is a margin against any ordering surprise.
"""

FIRST_QUEUE_PAGE_SIZE = 16
"""Queued tasks a scheduling pass reads first: a worker usually takes a few, or none."""

VIEWS_BETWEEN_YIELDS = 100
"""Workers viewed between two turns of the event loop (listing a pool of thousands)."""

QUEUE_PAGE_SIZE = 64
"""Queued tasks each further read takes, while the worker could take more: a queue may be long
(say, of tasks for other labels) before a task this worker fits."""


class SchedulerService(LivenessSweeps):
    """Applies ``domain.scheduling`` to the store on behalf of the Twirp services and the API."""

    def __init__(
        self,
        store: SchedulingStore,
        clock: Clock,
        waiters: PollWaiters,
        *,
        offline_after_seconds: float,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._waiters = waiters
        self._dispatcher = PollDispatcher(store, waiters)
        self.offline_after_seconds = offline_after_seconds
        self._metrics: ControllerMetrics = metrics or NullControllerMetrics()
        waiters.count_wake = self._metrics.poll_woken
        # Keeps the gauges current; None when nobody reads them.
        self.metrics_refresher = (
            None if metrics is None else MetricsRefresher(store, self, self._metrics)
        )
        # One process hands out tasks one poll at a time, so that its accounting of what each
        # worker holds is never computed from a stale picture by two polls at once.
        self._assign_lock = asyncio.Lock()
        self._missed: dict[str, int] = {}
        # When this controller could hear workers again: its start, or the end of an outage of
        # its own or of its database (``domain.scheduling.silence``).
        self._watching_since = clock.now()
        self._store_failed = False
        # Forges (``app.controller.forge_setup``): whether a build's tasks wait for an
        # approval (a fork's pull request), and a nudge for the commit status reporter.
        self.approval_gate: Callable[[str], Awaitable[bool]] | None = None
        self.on_change: Callable[[], None] | None = None

    # --- workers ----------------------------------------------------------------------------

    async def worker_view(self, worker: WorkerRecord) -> WorkerView:
        """Return the scheduler's view of a worker, with the controller's own accounting."""
        return self._view(worker, await self._store.tasks_of_worker(worker.name))

    def _view(self, worker: WorkerRecord, held: Sequence[TaskRecord]) -> WorkerView:
        return WorkerView(
            name=worker.name,
            labels=worker.labels,
            resources_total=worker.resources_total,
            resources_in_use=task_resources(held),
            running_task_ids=tuple(task.id for task in held),
            paused=worker.disabled,
            online=self.is_online(worker),
            policy=worker.security_policy,
        )

    async def worker_views(
        self, *, held: bool = True, for_labels: Sequence[Mapping[str, str]] | None = None
    ) -> list[WorkerView]:
        """Return the scheduler's view of every registered worker (``held=False``: without
        reading the tasks each holds, one read for all; ``for_labels``: reading them only for
        the workers that have one of these label sets, the only ones whose load can matter)."""
        workers = await self._store.list_workers()
        # A task's labels are few and usually shared by many tasks: match each set once. With a
        # big pool of other labels, one read per worker would cost the pool's size per refresh.
        wanted = (
            None
            if for_labels is None
            else list({tuple(sorted(labels.items())): labels for labels in for_labels}.values())
        )
        views = []
        for index, worker in enumerate(workers, 1):
            if held and (wanted is None or any(labels_match(worker.labels, ls) for ls in wanted)):
                views.append(await self.worker_view(worker))
            else:
                views.append(self._view(worker, ()))
            if index % VIEWS_BETWEEN_YIELDS == 0:
                # Polls waiting for a pickup go first: a big pool takes many milliseconds.
                await asyncio.sleep(0)
        return views

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
        # What tasks wait for may have changed: the refresher reads the store again soon.
        if self.metrics_refresher is not None:
            self.metrics_refresher.request()

    async def running_task_ids(self, worker_name: str) -> list[str]:
        """Return the tasks the controller believes the worker holds."""
        return await self._store.held_task_ids(worker_name)

    async def set_disabled(
        self, worker_name: str, disabled: bool, *, until_register: bool = False
    ) -> WorkerRecord | None:
        """Pause or resume a worker; a resumed worker's held poll looks for work again.

        ``until_register``: the worker's own drain, which its next registration clears.
        """
        record = await self._store.set_disabled(
            worker_name, disabled, until_register=until_register
        )
        if record is not None:
            # Resumed: it may take work; paused: its held poll's view must say so.
            self._waiters.wake(worker_name)
        self._changed()
        return record

    # --- polls ------------------------------------------------------------------------------

    @property
    def changes(self) -> int:
        """Return the ``PollWaiters.changes`` count a poll notes before its check-in."""
        return self._waiters.changes

    async def poll_pass(
        self,
        worker: WorkerRecord,
        reported: Sequence[str],
        *,
        settle: bool,
        claim: bool,
        ticket: PollTicket | None = None,
        checked_in: WorkerCheckIn | None = None,
        changes_at_check_in: int = -1,
        reported_tasks: Mapping[str, TaskRecord | None] | None = None,
    ) -> tuple[list[str], list[TaskRecord]]:
        """Look once on behalf of a ``Poll``: return the tasks the worker must stop and the
        queued tasks it was handed (claimed only if ``claim``).

        ``worker`` is the record the poll just stored; ``settle`` also fails the tasks the
        worker left out of its polls (once per poll: ``MISSED_POLLS_BEFORE_LOST`` counts
        polls). The worker's tasks are read once for all of it. ``ticket``, the poll's, gets the
        worker's view for later dispatches; tasks it was chosen for and did not take are
        offered again. ``checked_in``, what the poll's check-in read (its first
        ``FIRST_QUEUE_PAGE_SIZE`` queued tasks) when ``PollWaiters.changes`` was
        ``changes_at_check_in``, stands for reading again if that count has not moved since.
        ``reported_tasks``, what the poll's check-in read of the reported tasks that did not
        occupy the worker (``WorkerCheckIn.reported``), spares reading those again.
        """
        promised: list[str] = []
        if ticket is not None:
            promised, ticket.promised, ticket.view = ticket.promised, [], None
        async with self._assign_lock:
            # Checked under the lock: no claim of this process comes between check and use.
            fresh = checked_in if changes_at_check_in == self._waiters.changes else None
            known = dict(reported_tasks or {})
            if fresh:
                held = list(fresh.held)
            else:  # read again, with the reported tasks the check-in did not read
                unknown = [task_id for task_id in reported if task_id not in known]
                mine = await self._store.held_and_reported(worker.name, unknown)
                held = list(mine.held)
                known.update(mine.reported)
            if settle:
                held = await self._settle_unreported(worker.name, held, set(reported))
            to_stop = await self._to_stop(worker.name, held, reported, known)
            page = fresh.queued if fresh else None
            to_start, view = (
                await self._claim(worker, held, set(to_stop), page) if claim else ([], None)
            )
        if ticket is not None:
            ticket.view = view
        taken = {task.id for task in to_start}
        if missed := [task_id for task_id in promised if task_id not in taken]:
            await self._dispatcher.reoffer(missed)
        return to_stop, to_start

    async def _to_stop(
        self,
        worker_name: str,
        held: Sequence[TaskRecord],
        reported: Sequence[str],
        known: Mapping[str, TaskRecord | None],
    ) -> list[str]:
        """Return the tasks the worker must stop: cancelled ones, and ones no longer its own
        (as ``known`` says, read by the poll's check-in, or read one by one)."""
        # What the check-in read of a task that did not occupy the worker still holds later in
        # the poll: such a task's verdict changes only by its becoming the worker's (claimed),
        # and then ``held``, read anew by a later look, has it.
        # A reported task that this worker stopped itself is left alone: the worker still lists
        # it while its ``TaskStopped`` is on the way, and an early answer would only delay its
        # next poll by a whole interval.
        held_ids = {task.id for task in held}
        stop = [task.id for task in held if task.cancel_requested]
        for task_id in reported:
            if task_id in held_ids:
                continue
            task = known[task_id] if task_id in known else await self._store.get_task(task_id)
            if task is None or task.worker != worker_name or released_from(task, worker_name):
                stop.append(task_id)
        return list(dict.fromkeys(stop))

    async def _settle_unreported(
        self, worker_name: str, held: Sequence[TaskRecord], reported: set[str]
    ) -> list[TaskRecord]:
        """Fail the held tasks the worker left out of its polls (``MISSED_POLLS_BEFORE_LOST``
        in a row); return the tasks it still holds afterwards."""
        still_held = []
        for task in held:
            if task.id in reported:
                self._missed.pop(task.id, None)
                still_held.append(task)
                continue
            missed = self._missed.get(task.id, 0) + 1
            if missed < MISSED_POLLS_BEFORE_LOST:
                self._missed[task.id] = missed
                still_held.append(task)
                continue
            self._missed.pop(task.id, None)
            # The store has no way to put one claimed task back in the queue, so a task lost
            # on the worker's side fails like one of a lost worker.
            log.warning(
                "worker %s no longer reports task %s; failing it", printable(worker_name), task.id
            )
            left = await self._stop(task, TaskStatus.FAILED, lost_worker_message(worker_name))
            await self.advance_build(task.build_id, created_left=left.created_left)
        return still_held

    async def claim_for(self, worker_name: str, exclude: Collection[str] = ()) -> list[TaskRecord]:
        """Claim the queued tasks that ``worker_name`` may start now (possibly none).

        ``exclude`` keeps tasks out of this answer, such as ones the same answer tells the
        worker to stop (an old copy it still runs).
        """
        async with self._assign_lock:
            worker = await self._store.get_worker(worker_name)
            if worker is None:
                return []
            held = await self._store.tasks_of_worker(worker_name)
            claimed, _ = await self._claim(worker, held, exclude)
            return claimed

    async def _claim(
        self,
        worker: WorkerRecord,
        held: Sequence[TaskRecord],
        exclude: Collection[str],
        first_page: Sequence[TaskRecord] | None = None,
    ) -> tuple[list[TaskRecord], WorkerView]:
        # Runs under the assignment lock, with ``held`` read under it (or known unchanged since).
        # The queue is read oldest first, a page at a time (the first may be given), and only
        # while the worker could still take something. Returns the claimed tasks and the
        # worker's view with them.
        view = self._view(worker, held)
        chosen: list[TaskRecord] = []
        after = 0
        seen_queue = False
        while can_take_more(view):
            size = FIRST_QUEUE_PAGE_SIZE if after == 0 else QUEUE_PAGE_SIZE
            given = first_page if after == 0 else None
            page = list(given) if given is not None else await self._store.queued_tasks(size, after)
            seen_queue = seen_queue or bool(page)
            candidates = {task.id: task for task in page if task.id not in exclude}
            picked = assign([queued_view(t) for t in candidates.values()], [view], worker.name)
            chosen += [candidates[task_id] for task_id in picked]
            view = with_tasks(view, [candidates[task_id] for task_id in picked])
            if len(page) < size:
                break
            after = page[-1].sequence
        claimed: list[TaskRecord] = []
        for queued in chosen:
            # Another controller process sharing the database may have taken it meanwhile.
            record = await self._store.claim_task(queued.id, worker.name)
            if record is not None:
                claimed.append(record)
                # Both times come from the store's clock: a queued task's row changes only
                # when it is queued, and the claim stamps it again.
                self._metrics.task_assigned(worker.name, record.updated_at - queued.updated_at)
        if claimed:
            self._waiters.note_change()
            self._changed()
        elif seen_queue and self.metrics_refresher is not None:
            # Why the queue waits may read differently now; no task changed state, so the
            # status reporter is not nudged (each of many idle polls would make it scan).
            self.metrics_refresher.request()
        return claimed, with_tasks(self._view(worker, held), claimed)

    async def pending_reason(self, task: TaskRecord) -> PendingReason:
        """Return why a queued task has no worker yet: its kind and the words for a user."""
        views = await self.worker_views(for_labels=[task.spec.labels])
        return why_pending(queued_view(task), views)

    # --- task lifecycle -----------------------------------------------------------------------

    async def task_started(self, task: TaskAssignment) -> None:
        """Record ``TaskStarted``."""
        await self._store.mark_started(task.id)

    async def command_results(self, task: TaskAssignment, results: Sequence[CommandResult]) -> None:
        """Record command results reported by the worker."""
        if results:
            await self._store.record_command_results(task.id, results)

    async def task_failed(self, task: TaskAssignment, message: str) -> None:
        """Record ``TaskFailed``: the task is ``FAILED`` at once; its worker still holds it."""
        text = message or "the worker reported the task as failed"
        if await self._store.finish_task(task.id, TaskStatus.FAILED, text):
            await self.advance_build(task.build_id)

    async def task_stopped(self, task: TaskAssignment) -> TaskRecord | None:
        """Record ``TaskStopped``: settle the final status, release dependants and capacity."""
        current = await self._store.get_task(task.id)
        if current is None:  # tasks are never deleted; nothing to settle if one were
            return None
        status, message = stopped_status(current, self._clock.now())
        outcome = await self._stop(current, status, message)
        self._missed.pop(task.id, None)
        await self.advance_build(task.build_id, created_left=outcome.created_left)
        if task.worker is not None:
            self._waiters.wake(task.worker)
        self._changed()
        return outcome.stopped

    async def _stop(self, task: TaskRecord, status: TaskStatus, message: str) -> TaskStop:
        """Finalise a task with ``status`` and ``message`` unless it is final, and record its
        stop: one store call, which also counts what its build has left to advance."""
        outcome = await self._store.stop_task(task.id, status, message)
        if outcome.stopped is None and message and not task.status.is_final:
            # No longer claimed (released meanwhile), so not stopped: finalised all the same.
            await self._store.finish_task(task.id, status, message)
        return outcome

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task: at once if unclaimed, else through its worker's next poll."""
        record = await self._store.request_cancel(task_id)
        if record is None:
            return None
        if record.worker is not None and record.occupies_worker:
            self._waiters.wake(record.worker)
        else:
            await self.advance_build(record.build_id)
        self._changed()
        return record

    async def advance_build(self, build_id: str, *, created_left: int | None = None) -> None:
        """Schedule or skip the tasks of a build whose dependencies have settled
        (``created_left``: how many ``CREATED`` tasks it has, if the caller just read that)."""
        # Only CREATED tasks wait for dependencies; most builds have none left, and loading
        # a big build's every task for each task that ends would cost O(tasks) per task.
        if created_left is None:
            created_left = await self._store.count_build_tasks(build_id, {TaskStatus.CREATED})
        if not created_left:
            return
        # Only the latest attempt of each task counts: a dependency on a re-run task waits for
        # its new attempt (``domain.rerun``).
        tasks, _ = split_attempts(await self._store.list_build_tasks(build_id))
        # Positions resolve names and aliases alike; a skip by condition and an allowed failure
        # count as completed for the dependants (``counted_status``).
        positions = BuildSpec(tasks=tuple(task.spec for task in tasks)).dependency_indices()
        statuses = {task.id: counted_status(task.status, task.spec) for task in tasks}
        depends_on = {
            task.id: [tasks[i].id for i in indices]
            for task, indices in zip(tasks, positions, strict=True)
        }
        held = {task.id for task in tasks if task.awaiting_trigger}
        if self.approval_gate is not None and await self.approval_gate(build_id):
            held = {task.id for task in tasks}
        by_id = {task.id: task for task in tasks}
        queued: list[QueuedTask] = []
        for task_id, status in advance_dependencies(statuses, depends_on, held).items():
            changed = await self._store.set_status(task_id, {TaskStatus.CREATED}, status)
            if changed and status is TaskStatus.SCHEDULED:
                queued.append(queued_view(by_id[task_id]))
        if queued:
            self._dispatcher.offer(queued)
            self._changed()

    async def trigger(self, task_id: str) -> TaskRecord | None:
        """Trigger a manual task: it then waits for its dependencies as any other task does."""
        record = await self._store.trigger_task(task_id)
        if record is None:
            return None
        await self.advance_build(record.build_id)
        return await self._store.get_task(task_id) or record

    async def build_submitted(self, build_id: str | None = None) -> None:
        """Offer a new build's queued tasks to the held polls (without ``build_id``: the first
        page of the queue)."""
        if build_id is None:
            queued = await self._store.queued_tasks(QUEUE_PAGE_SIZE)
        else:
            tasks = await self._store.list_build_tasks(build_id)
            queued = [t for t in tasks if t.status is TaskStatus.SCHEDULED and t.worker is None]
        self._dispatcher.offer([queued_view(task) for task in queued])
        self._changed()
