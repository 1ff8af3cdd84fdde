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
from typing import TypeVar

from app.worker.command_runner import CommandRunner
from app.worker.instances import InstanceProvider
from app.worker.log_stream import FLUSH_INTERVAL
from app.worker.retry import Sleep
from app.worker.running_task import RunningTask, TaskCancelled
from domain.errors import ControllerError, InstanceError, PolicyViolation
from domain.modifiers import ModifierPool
from domain.policy import SecurityPolicy, check_isolation
from domain.ports import Clock, ControllerClient, Instance
from domain.protocol import CommandResult, CommandsResponse, TaskRef

T = TypeVar("T")

log = logging.getLogger("cirrus.worker")


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
        timer_sleep: Sleep = asyncio.sleep,
        log_sleep: Sleep = asyncio.sleep,
        log_flush_interval: float | None = FLUSH_INTERVAL,
    ) -> None:
        self.policy = policy
        self.instances = instances
        self.modifiers = modifiers
        self.clock = clock
        self.timer_sleep = timer_sleep
        self.log_sleep = log_sleep
        self.log_flush_interval = log_flush_interval

    async def run(self, running: RunningTask) -> None:
        """Run the task to its end; return once ``TaskStopped`` was delivered or refused."""
        instance: Instance | None = None
        commands: CommandRunner | None = None
        try:
            try:
                instance = await self._create_instance(running)
                await running.unless_cancelled(self._report(running, "TaskStarted", _started))
                running.phase = "fetching commands"
                response = await running.unless_cancelled(self._initial_commands(running))
                running.phase = "running commands"
                commands = self._command_runner(running, instance, response)
                results = await commands.run_all()
                if not running.cancel_requested.is_set():
                    running.phase = "reporting"
                    await self._report_finished(running, results)
            except TaskCancelled:
                log.info("task %s cancelled", running.task_id)
            except TaskFailure as failure:
                self._send_failed(running, str(failure))
            except Exception as error:  # a bug must still end in TaskFailed/TaskStopped
                log.exception("task %s failed unexpectedly", running.task_id)
                self._send_failed(running, f"worker error: {error}")
        finally:
            running.phase = "cleaning up"
            await self._clean_up(running, instance, commands)
            running.phase = "stopping"
            await self._send_stopped(running)

    async def refuse(self, running: RunningTask, message: str) -> None:
        """Refuse a task without running anything: ``TaskFailed`` then ``TaskStopped``."""
        log.warning("refusing task %s: %s", running.task_id, message)
        self._send_failed(running, message)
        await self._send_stopped(running)

    async def _create_instance(self, running: RunningTask) -> Instance:
        task = running.task
        running.phase = "checking policy"
        try:
            # Before any isolation tool is looked up or run.
            check_isolation(self.policy, task.isolation)
        except PolicyViolation as violation:
            raise TaskFailure(str(violation)) from violation
        modifier = self.modifiers.acquire(task.task_id, task.resources_to_use)
        running.phase = "creating instance"
        try:
            return await running.unless_cancelled(self.instances.create(task, modifier))
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
        self, running: RunningTask, instance: Instance, response: CommandsResponse
    ) -> CommandRunner:
        return CommandRunner(
            running=running,
            instance=instance,
            response=response,
            clock=self.clock,
            timer_sleep=self.timer_sleep,
            log_sleep=self.log_sleep,
            log_flush_interval=self.log_flush_interval,
        )

    async def _report(
        self,
        running: RunningTask,
        what: str,
        call: Callable[[ControllerClient, TaskRef], Awaitable[object]],
    ) -> bool:
        ref = running.ref
        return await running.outbox.send(f"{what} {ref.task_id}", lambda client: call(client, ref))

    async def _report_finished(
        self, running: RunningTask, results: Sequence[CommandResult]
    ) -> None:
        final = tuple(results)

        async def finished(client: ControllerClient, ref: TaskRef) -> object:
            await client.report_agent_finished(ref, final)
            return None

        await self._report(running, "ReportAgentFinished", finished)

    def _send_failed(self, running: RunningTask, message: str) -> None:
        log.error("task %s failed: %s", running.task_id, message)
        ref = running.ref

        async def failed(client: ControllerClient) -> object:
            await client.task_failed(ref, message)
            return None

        running.outbox.send(f"TaskFailed {ref.task_id}", failed)

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
