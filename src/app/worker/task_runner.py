"""The life of one task, from the security check to ``TaskStopped`` (PROTOCOL.md order of work).

Policy check → instance → ``TaskStarted`` → ``InitialCommands`` → commands → ``ReportAgentFinished``
→ cleanup → ``TaskStopped``. A task that cannot run gets ``TaskFailed`` and then ``TaskStopped``;
a cancelled one only ``TaskStopped``. Every report goes through the upstream's ordered outbox;
``run`` returns once ``TaskStopped`` left it, so the caller may forget the task then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from app.worker.command_runner import CommandRunner
from app.worker.log_stream import FLUSH_INTERVAL
from app.worker.retry import Sleep
from app.worker.running_task import RunningTask, TaskCancelled
from app.worker.standby import StandbyKeeper
from domain.errors import ControllerError, InstanceError, PolicyViolation
from domain.isolation import instance_attributes
from domain.modifiers import ModifierPool
from domain.policy import SecurityPolicy, check_isolation
from domain.ports import Clock, ControllerClient, Instance, InstanceProvider
from domain.protocol import CommandResult, CommandsResponse, CommandStatus, TaskRef
from domain.telemetry import Metrics, TaskTrace, Tracing
from domain.telemetry_null import NullMetrics, NullTracing
from domain.worker_tools import WorkerTools

T = TypeVar("T")

log = logging.getLogger("cirrus.worker")


COMPLETED = "completed"
FAILED = "failed"
ABORTED = "aborted"
REFUSED = "refused"

# Default ports of URL schemes, for the ``cirrus.upstream_hostname`` span attribute.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def task_status(results: Sequence[CommandResult]) -> str:
    """``failed`` when a command failed or was aborted (a timeout), else ``completed``."""
    bad = (CommandStatus.FAILED, CommandStatus.ABORTED)
    return FAILED if any(result.status in bad for result in results) else COMPLETED


def upstream_hostname(endpoint: str) -> str:
    """``host:port`` of a controller URL (the scheme's default port when none is given)."""
    parts = urlsplit(endpoint)
    host = parts.hostname or endpoint
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or _DEFAULT_PORTS.get(parts.scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


@dataclass
class Outcome:
    """How a task ended, as the ``tasks.duration`` histogram labels it; failed until known."""

    status: str = FAILED


class TaskFailure(Exception):
    """The task cannot run; ``str()`` is the ``TaskFailed`` message."""


class TaskRunner:
    """Runs tasks with the worker's policy, instance factories and modifier pool."""

    def __init__(
        self,
        *,
        policy: SecurityPolicy,
        instances: InstanceProvider,
        modifiers: ModifierPool,
        clock: Clock,
        tools: WorkerTools,
        timer_sleep: Sleep = asyncio.sleep,
        log_sleep: Sleep = asyncio.sleep,
        log_flush_interval: float | None = FLUSH_INTERVAL,
        worker_name: str = "",
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        standby: StandbyKeeper | None = None,
    ) -> None:
        self.policy = policy
        self.worker_name = worker_name
        self.metrics: Metrics = metrics or NullMetrics()
        self.tracing: Tracing = tracing or NullTracing()
        self.instances = instances
        self.modifiers = modifiers
        self.standby = standby
        self.clock = clock
        self.tools = tools
        self.timer_sleep = timer_sleep
        self.log_sleep = log_sleep
        self.log_flush_interval = log_flush_interval

    async def run(self, running: RunningTask) -> None:
        """Run the task to its end; return once ``TaskStopped`` was delivered or refused."""
        task = running.task
        attributes = self._span_attributes(running)
        outcome = Outcome()
        try:
            with self.tracing.task(
                task.task_id, task.traceparent, task.tracestate, attributes
            ) as trace:
                await self._run_traced(running, trace, outcome)
        finally:
            self.metrics.task_finished(
                running.isolation_kind, outcome.status, self._since_accepted(running)
            )

    async def _run_traced(self, running: RunningTask, trace: TaskTrace, outcome: Outcome) -> None:
        instance: Instance | None = None
        commands: CommandRunner | None = None
        try:
            try:
                with trace.step("create-instance"):
                    instance = await self._create_instance(running, trace)
                running.started = True
                self.metrics.image_used(instance_attributes(running.task.isolation))
                await running.unless_cancelled(self._report(running, "TaskStarted", _started))
                running.announced.set()
                running.phase = "fetching commands"
                response = await running.unless_cancelled(self._initial_commands(running))
                running.phase = "running commands"
                commands = self._command_runner(running, instance, response, trace)
                self.metrics.task_queue_to_start(self._since_accepted(running))
                results = await commands.run_all()
                outcome.status = task_status(results)
                if not running.cancel_requested.is_set():
                    running.phase = "reporting"
                    await self._report_finished(running, results)
            except TaskCancelled:
                log.info("task %s cancelled", running.task_id)
            except TaskFailure as failure:
                self._send_failed(running, str(failure), trace)
            except Exception as error:  # a bug must still end in TaskFailed/TaskStopped
                log.exception("task %s failed unexpectedly", running.task_id)
                self._send_failed(running, f"worker error: {error}", trace)
        finally:
            running.announced.set()  # if it never got that far
            if running.cancel_requested.is_set():
                outcome.status = ABORTED
            running.phase = "cleaning up"
            with trace.step("clean-up"):
                await self._clean_up(running, instance, commands)
            running.phase = "stopping"
            await self._send_stopped(running)

    async def refuse(self, running: RunningTask, message: str) -> None:
        """Refuse a task without running anything: ``TaskFailed`` then ``TaskStopped``."""
        log.warning("refusing task %s: %s", running.task_id, message)
        running.announced.set()  # never started
        try:
            self._send_failed(running, message)
            await self._send_stopped(running)
        finally:
            self.metrics.task_finished(
                running.isolation_kind, REFUSED, self._since_accepted(running)
            )

    def _since_accepted(self, running: RunningTask) -> float:
        return max(0.0, self.clock.now() - running.accepted_at)

    def _span_attributes(self, running: RunningTask) -> dict[str, str | float]:
        return {
            **instance_attributes(running.task.isolation),
            "cirrus.task_id": running.task_id,
            "cirrus.upstream_worker_name": self.worker_name,
            "cirrus.upstream_hostname": upstream_hostname(running.upstream.endpoint),
        }

    async def _create_instance(self, running: RunningTask, trace: TaskTrace) -> Instance:
        task = running.task
        running.phase = "checking policy"
        try:
            # Before any isolation tool is looked up or run.
            check_isolation(self.policy, task.isolation)
        except PolicyViolation as violation:
            raise TaskFailure(str(violation)) from violation
        if self.standby is not None:
            running.phase = "taking the standby"
            taken = await running.unless_cancelled(self.standby.take(task))
            if taken is not None:
                return taken
        modifier = self.modifiers.acquire(task.task_id, task.resources_to_use)
        running.phase = "creating instance"
        try:
            return await running.unless_cancelled(
                self.instances.create(task, modifier, trace.environment())
            )
        except InstanceError as error:
            raise TaskFailure(f"failed to create an instance: {error}") from error

    async def _initial_commands(self, running: RunningTask) -> CommandsResponse:
        ref = running.ref
        timestamp = int(self.clock.now() * 1000)

        async def fetch(client: ControllerClient) -> CommandsResponse:
            return await client.initial_commands(ref, timestamp)

        try:
            return await running.upstream.call(f"InitialCommands {ref.task_id}", fetch)
        except ControllerError as error:
            raise TaskFailure(f"failed to fetch the task's commands: {error}") from error

    def _command_runner(
        self,
        running: RunningTask,
        instance: Instance,
        response: CommandsResponse,
        trace: TaskTrace,
    ) -> CommandRunner:
        return CommandRunner(
            running=running,
            instance=instance,
            response=response,
            clock=self.clock,
            timer_sleep=self.timer_sleep,
            log_sleep=self.log_sleep,
            log_flush_interval=self.log_flush_interval,
            tools=self.tools,
            trace=trace,
        )

    async def _report(
        self,
        running: RunningTask,
        what: str,
        call: Callable[[ControllerClient, TaskRef], Awaitable[object]],
    ) -> bool:
        ref = running.ref
        return await running.outbox.send(
            f"{what} {ref.task_id}", lambda client: call(client, ref), ref.task_id
        )

    async def _report_finished(
        self, running: RunningTask, results: Sequence[CommandResult]
    ) -> None:
        final = tuple(results)

        async def finished(client: ControllerClient, ref: TaskRef) -> object:
            await client.report_agent_finished(ref, final)
            return None

        await self._report(running, "ReportAgentFinished", finished)

    def _send_failed(
        self, running: RunningTask, message: str, trace: TaskTrace | None = None
    ) -> None:
        log.error("task %s failed: %s", running.task_id, message)
        if trace is not None:
            trace.fail(message)
        ref = running.ref

        async def failed(client: ControllerClient) -> object:
            await client.task_failed(ref, message)
            return None

        running.outbox.send(f"TaskFailed {ref.task_id}", failed, ref.task_id)

    async def _send_stopped(self, running: RunningTask) -> None:
        await self._report(running, "TaskStopped", _stopped)

    async def _clean_up(
        self, running: RunningTask, instance: Instance | None, commands: CommandRunner | None
    ) -> None:
        try:
            if commands is not None:
                await commands.stop_background()
            if instance is not None:
                await instance.close()
        except Exception:
            log.exception("cleaning up task %s failed", running.task_id)
        finally:
            self.modifiers.release(running.task_id)


async def _started(client: ControllerClient, ref: TaskRef) -> object:
    await client.task_started(ref)
    return None


async def _stopped(client: ControllerClient, ref: TaskRef) -> object:
    await client.task_stopped(ref)
    return None
