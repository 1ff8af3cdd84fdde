"""The worker: polls every upstream, starts and stops tasks, drains and shuts down.

One poll coroutine per upstream (an outage of one never holds up another) and one outbox
coroutine per upstream; one asyncio task per accepted task. Nothing here stops a running task
because a controller is unreachable: a failed poll is retried with backoff, forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.worker.outbox import Outbox
from app.worker.retry import Backoff, Sleep
from app.worker.running_task import RunningTask
from app.worker.standby import StandbyKeeper
from app.worker.state import TaskSnapshot, UpstreamSnapshot, WorkerSnapshot
from app.worker.task_runner import TaskRunner
from app.worker.upstream import Upstream, next_poll_interval
from domain.errors import ControllerError, PolicyViolation, SessionLostError
from domain.policy import check_isolation
from domain.ports import Clock, ControllerClient
from domain.protocol import (
    AgentAwareTask,
    PollRequest,
    PollResponse,
    StandbyParameters,
    frozen_float_map,
)
from domain.resources import free_resources, sum_resources
from domain.telemetry import Metrics, WorkerGauges
from domain.telemetry_null import NullMetrics
from domain.worker_plan import (
    Action,
    IgnoreTask,
    RefuseTask,
    ShutDown,
    StartTask,
    StopTask,
    UpdateStandby,
    WorkerMode,
    accepts_standby,
    drain,
    finished,
    plan,
)

log = logging.getLogger("cirrus.worker")

# A controller may hold a Poll open for a whole interval; allow that plus this margin.
POLL_TIMEOUT_MARGIN = 15.0
# A Poll that took at least this long was held open by the controller (long poll): it already
# waited for work, so the next one starts at once. Shorter ones wait out the rest of the interval,
# so a controller that answers at once is polled once per interval and never in a tight loop.
HELD_POLL_SECONDS = 1.0
# The next Poll after tasks were handed out waits (at most this long) until they reported
# ``TaskStarted``: the controller serves calls in the order they come, so a Poll sent first
# would delay their pickup by its check-in. A slow instance (a VM's clone) delays it no longer.
STARTED_HEAD_START_SECONDS = 0.1


def refusal_message(worker_name: str) -> str:
    """The ``TaskFailed`` message of a task refused while draining or after the ephemeral one."""
    return f"worker {worker_name} is shutting down and accepts no new tasks"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What the worker loop needs from the validated configuration."""

    name: str
    resources_total: Mapping[str, float] = field(default_factory=frozen_float_map)
    ephemeral: bool = False
    standby: StandbyParameters | None = None


class Worker:
    """Runs the poll loops and tasks until shut down; ``run`` returns the exit code."""

    def __init__(
        self,
        settings: WorkerSettings,
        upstreams: Sequence[Upstream],
        runner: TaskRunner,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
        standby: StandbyKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.metrics: Metrics = metrics or NullMetrics()
        self.upstreams = tuple(upstreams)
        self.outboxes = {id(upstream): Outbox(upstream) for upstream in self.upstreams}
        self.runner = runner
        self.clock = clock
        self.sleep = sleep
        self.tasks: dict[str, RunningTask] = {}
        # Without VM factories (unit tests of other parts) pushed parameters are only kept.
        self.standby_parameters = settings.standby
        self.standby_keeper = standby
        self.mode = WorkerMode(ephemeral=settings.ephemeral)
        self._task_runs: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._wake = {id(upstream): asyncio.Event() for upstream in self.upstreams}
        # Per upstream: a task of it ended without starting since its last full interval wait.
        # Its next answers with tasks wait out the interval too, so that a controller offering
        # tasks that fail at once (no instance, say) is not polled in a tight loop.
        self._failed_early: dict[int, bool] = {}
        # Per upstream: tasks its last poll answer started, until its next Poll leaves.
        self._just_started: dict[int, list[RunningTask]] = {}
        # Per upstream, the session (registration generation) told that we drain.
        self._drain_told: dict[int, int] = {}
        if standby is not None:
            standby.on_change = self._standby_changed

    # --- the mode (domain/worker_plan.py), read by the status view and tests ----------------

    @property
    def refusing(self) -> bool:
        """New tasks are refused."""
        return self.mode.refusing

    @property
    def paused(self) -> bool:
        """A drain began."""
        return self.mode.paused

    @property
    def polling_stopped(self) -> bool:
        """A controller asked the worker to shut down: the poll loops end."""
        return not self.mode.polling

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self) -> int:
        """Poll and run tasks until drained or shut down; return the process exit code."""
        self.publish_gauges()
        loops = [asyncio.create_task(outbox.run()) for outbox in self.outboxes.values()]
        loops += [asyncio.create_task(self._poll_forever(u)) for u in self.upstreams]
        try:
            await self._until_finished()
        finally:
            for loop_task in loops:
                loop_task.cancel()
            for loop_task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop_task
            if self.standby_keeper is not None:
                # No VM outlives the worker: a standby still warming up is abandoned, too.
                await self.standby_keeper.aclose()
        log.info("worker %s stopped", self.settings.name)
        return 0

    def drain(self) -> None:
        """Stop accepting tasks, let running ones finish and be reported, then stop."""
        if self.paused:
            return
        log.info("draining: no new tasks; waiting for %d running task(s)", len(self.tasks))
        self.mode = drain(self.mode)
        if self.standby_keeper is not None:
            self.standby_keeper.discard()
        for upstream in self.upstreams:
            # A controller that never accepted us has no session to disable, and waiting to
            # deliver it would keep a worker with a wrong token from ever stopping.
            if upstream.registered:
                self._drain_told[id(upstream)] = upstream.generation
                self.outboxes[id(upstream)].send("UpdateStatus disabled=true", _disable)
        self._changed.set()

    def cancel_all(self) -> None:
        """Drain, and cancel every running task (aborted, cleaned up, reported)."""
        self.drain()
        for running in self.tasks.values():
            running.cancel()
        log.info("cancelling %d running task(s)", len(self.tasks))

    def snapshot(self) -> WorkerSnapshot:
        """Return the worker's state at this moment."""
        in_use = self.resources_in_use()
        return WorkerSnapshot(
            name=self.settings.name,
            upstreams=tuple(
                UpstreamSnapshot(
                    endpoint=u.endpoint,
                    registered=u.registered,
                    last_poll_ok=u.last_poll_ok,
                    last_poll_time=u.last_poll_time,
                    poll_interval_seconds=u.poll_interval,
                    last_error=u.last_error,
                    pending_reports=self.outboxes[id(u)].pending,
                )
                for u in self.upstreams
            ),
            tasks=tuple(
                TaskSnapshot(
                    task_id=r.task_id,
                    upstream=r.upstream.endpoint,
                    isolation_kind=r.isolation_kind,
                    started_at=r.accepted_at,
                    resources=frozen_float_map(r.resources),
                    phase=r.phase,
                    cancelling=r.cancel_requested.is_set(),
                )
                for r in self.tasks.values()
            ),
            resources_total=frozen_float_map(self.settings.resources_total),
            resources_in_use=frozen_float_map(in_use),
            resources_free=frozen_float_map(free_resources(self.settings.resources_total, in_use)),
            draining=self.refusing and not self.settings.ephemeral,
            paused=self.paused,
            ephemeral=self.settings.ephemeral,
            taken_at=self.clock.now(),
        )

    def publish_gauges(self) -> None:
        """Hand the gauges' exporters a fresh snapshot of running tasks and resources."""
        in_use = self.resources_in_use()
        self.metrics.publish_gauges(
            WorkerGauges(
                running_tasks=len(self.tasks),
                resources_used=in_use,
                resources_unused=free_resources(self.settings.resources_total, in_use),
                standby_since=(
                    self.standby_keeper.since() if self.standby_keeper is not None else None
                ),
            )
        )

    def resources_in_use(self) -> dict[str, float]:
        """Sum of ``resourcesToUse`` over every task not yet reported stopped."""
        return sum_resources(r.resources for r in self.tasks.values())

    def poll_request(self, upstream: Upstream) -> PollRequest:
        """Build the ``PollRequest`` for ``upstream``."""
        return PollRequest(
            worker_info=upstream.worker_info,
            resources_in_use=frozen_float_map(self.resources_in_use()),
            running_tasks=tuple(r.task_id for r in self.tasks.values() if r.upstream is upstream),
            # Any accepted task takes the standby or makes it go: none is available then.
            available_standby_instances_information=(
                self.standby_keeper.information(self.clock.now())
                if self.standby_keeper is not None and not self.tasks
                else ()
            ),
        )

    def maybe_create_standby(self) -> None:
        """Start warming a standby in the background when one is due (never waits for it)."""
        if self.standby_keeper is None or not accepts_standby(self.mode):
            return
        free = free_resources(self.settings.resources_total, self.resources_in_use())
        self.standby_keeper.maybe_create(len(self.tasks), free)

    def _standby_changed(self) -> None:
        self.publish_gauges()
        # A standby gone (failed, destroyed) may be due again, e.g. after its backoff.
        self._changed.set()

    async def _until_finished(self) -> None:
        while True:
            if finished(self.mode, len(self.tasks)):
                # Deliver everything still queued (e.g. UpdateStatus) before leaving.
                await asyncio.gather(*(o.drained() for o in self.outboxes.values()))
                if not self.tasks:
                    return
            self._changed.clear()
            await self._changed.wait()

    # --- polling -----------------------------------------------------------------------

    async def _poll_forever(self, upstream: Upstream) -> None:
        backoff = Backoff(upstream.policy)
        while not self.polling_stopped:
            self.maybe_create_standby()
            await upstream.register()
            if self.paused and self._drain_told.get(id(upstream)) != upstream.generation:
                await self._tell_drain(upstream)
            generation = upstream.generation
            started = self.clock.monotonic()
            try:
                response = await upstream.client.poll(
                    self.poll_request(upstream), upstream.poll_interval + POLL_TIMEOUT_MARGIN
                )
            except SessionLostError as error:
                log.warning("poll of %s: %s; registering again", upstream.endpoint, error)
                upstream.last_poll_ok = False
                upstream.session_lost(generation)
                await self._pause(upstream, backoff.next_delay())
                continue
            except ControllerError as error:
                upstream.last_poll_ok = False
                upstream.last_error = str(error)
                delay = backoff.next_delay()
                log.error(
                    "failed to poll %s: %s; retrying in %.1f s", upstream.endpoint, error, delay
                )
                await self._pause(upstream, delay)
                continue
            backoff.reset()
            upstream.last_poll_ok = True
            upstream.last_poll_time = self.clock.now()
            upstream.last_error = ""
            upstream.poll_interval = next_poll_interval(
                upstream.poll_interval, response.poll_interval_in_seconds
            )
            accepted = self.handle(upstream, response)
            self.publish_gauges()
            elapsed = max(0.0, self.clock.monotonic() - started)
            if accepted and self._failed_early.get(id(upstream)):
                accepted = 0
            if accepted:
                await self._let_started_report(upstream)
            if accepted or elapsed >= HELD_POLL_SECONDS:
                # Started tasks: the controller may have more that fit what is left. Held open:
                # the controller already waited for work on our behalf. Either way, ask again
                # now; the next Poll carries everything that changed meanwhile.
                self._wake[id(upstream)].clear()
                continue
            await self._pause(upstream, upstream.poll_interval - elapsed)
            self._failed_early[id(upstream)] = False

    async def _let_started_report(self, upstream: Upstream) -> None:
        """Wait until the tasks the upstream's last answer started reported ``TaskStarted``
        (bounded; see ``STARTED_HEAD_START_SECONDS``)."""
        started = self._just_started.pop(id(upstream), [])
        waits = [asyncio.ensure_future(running.announced.wait()) for running in started]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=STARTED_HEAD_START_SECONDS)
        for wait in pending:
            wait.cancel()

    async def _tell_drain(self, upstream: Upstream) -> None:
        """Disable a session that began while we drain, before it polls: a controller clears
        a drain's pause when the worker registers again, and would hand it tasks to refuse."""
        self._drain_told[id(upstream)] = upstream.generation
        try:
            await upstream.call("UpdateStatus disabled=true", _disable)
        except ControllerError as error:
            log.error("telling %s that we drain failed: %s", upstream.endpoint, error)

    async def _pause(self, upstream: Upstream, seconds: float) -> None:
        wake = self._wake[id(upstream)]
        if wake.is_set() or self.polling_stopped:
            wake.clear()
            return
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        waker = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            wake.clear()

    def handle(self, upstream: Upstream, response: PollResponse) -> int:
        """Act on a poll response as ``domain.worker_plan.plan`` decides, in its order.

        Return how many tasks it started (refused, forbidden and duplicate ones not counted).
        """
        self.mode, actions = plan(self.mode, response, frozenset(self.tasks))
        return sum(self._carry_out(upstream, action) for action in actions)

    def _carry_out(self, upstream: Upstream, action: Action) -> bool:
        """Carry out one planned action; return whether it started a task that will run."""
        match action:
            case StopTask(task_id):
                running = self.tasks.get(task_id)
                log.info("stopping task %s%s", task_id, "" if running else " (not running here)")
                if running is not None:
                    running.cancel()
            case IgnoreTask(task_id):
                log.warning("task %s is already running; ignored", task_id)
            case StartTask(task):
                return self._start(upstream, task, refuse=False)
            case RefuseTask(task):
                self._start(upstream, task, refuse=True)
            case ShutDown():
                log.info("%s asked the worker to shut down", upstream.endpoint)
                for wake in self._wake.values():
                    wake.set()
                self._changed.set()
                if self.standby_keeper is not None:
                    self.standby_keeper.discard()
            case UpdateStandby(pushed):
                if self.standby_keeper is not None:
                    self.standby_keeper.update(pushed)
                    self.standby_parameters = self.standby_keeper.parameters
                    self.maybe_create_standby()
                else:
                    self.standby_parameters = pushed
        return False

    def _start(self, upstream: Upstream, task: AgentAwareTask, *, refuse: bool) -> bool:
        """Track and run (or refuse) ``task``; return whether it will really run."""
        running = RunningTask(
            task=task,
            upstream=upstream,
            outbox=self.outboxes[id(upstream)],
            accepted_at=self.clock.now(),
        )
        self.tasks[task.task_id] = running
        if refuse:
            work = self.runner.refuse(running, refusal_message(self.settings.name))
        else:
            log.info("started task %s", task.task_id)
            self.metrics.task_accepted()
            work = self.runner.run(running)
            self._just_started.setdefault(id(upstream), []).append(running)
        self.publish_gauges()
        run = asyncio.create_task(self._track(running, work))
        self._task_runs.add(run)
        run.add_done_callback(self._task_runs.discard)
        # The runner fails a task the security settings forbid without running anything: like
        # a refused one, it takes no resources and is no reason to poll again at once.
        return not refuse and self._allowed(task)

    def _allowed(self, task: AgentAwareTask) -> bool:
        try:
            check_isolation(self.runner.policy, task.isolation)
        except PolicyViolation:
            return False
        return True

    async def _track(self, running: RunningTask, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            log.exception("task %s ended with an error", running.task_id)
        finally:
            self.tasks.pop(running.task_id, None)
            log.info("task %s completed", running.task_id)
            self.maybe_create_standby()
            self.publish_gauges()
            self._changed.set()
            if running.started:
                # Its TaskStopped is delivered and its resources are free: every controller
                # may now have a task that fits (a dependent one, say); ask them at once. A
                # task refused, forbidden or failed before it started freed nothing, and
                # polling again for it could loop (PROTOCOL: no extra poll for a refusal).
                for wake in self._wake.values():
                    wake.set()
            else:
                self._failed_early[id(running.upstream)] = True


async def _disable(client: ControllerClient) -> object:
    return await client.update_status(True)
