"""Runs a task's commands in its instance: environment, instructions, timeout, cancellation.

The pure decisions (which command runs, which limit it gets) come from ``domain.commands``; this
module does the I/O around them and reports every status change and log byte via the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
from collections.abc import Mapping, Sequence

from app.worker.artifacts import TaskArtifacts
from app.worker.caches import TaskCaches
from app.worker.log_stream import CommandLog
from app.worker.retry import Sleep
from app.worker.running_task import RunningTask
from app.worker.task_env import TaskEnvironment
from domain.clone import NO_SOURCE_MESSAGE, CloneError, has_source
from domain.commands import (
    ExecutionState,
    after_cancel,
    after_command,
    after_timeout,
    command_limit,
    should_run,
    skipped,
    status_of_exit_code,
)
from domain.exit_status import LineEndTracker
from domain.ports import BackgroundProcess, Clock, Instance, OutputSink
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    CacheInstruction,
    CloneInstruction,
    Command,
    CommandResult,
    CommandsResponse,
    CommandStatus,
    ExitInstruction,
    FileInstruction,
    ScriptInstruction,
    UnknownInstruction,
    UploadCacheInstruction,
)
from domain.script_launch import DIRECT, SHELL_VARIABLE, WORKING_DIR_VARIABLE
from domain.task_environment import task_variables
from domain.task_headers import call_headers
from domain.telemetry import TaskTrace
from domain.telemetry_null import NullTaskTrace
from domain.worker_tools import WorkerTools

log = logging.getLogger("cirrus.worker")

ENV_FILE_VARIABLE = "CIRRUS_ENV"


def instruction_name(command: Command) -> str:
    """Return a readable name of a command's instruction kind, for log lines."""
    instruction = command.instruction
    if isinstance(instruction, UnknownInstruction) and instruction.name:
        return instruction.name.removesuffix("_instruction")
    return type(instruction).__name__.removesuffix("Instruction").lower() or "unknown"


class CommandRunner:
    """Runs one task's command list once; ``stop_background`` ends its background scripts."""

    def __init__(
        self,
        *,
        running: RunningTask,
        instance: Instance,
        response: CommandsResponse,
        clock: Clock,
        timer_sleep: Sleep,
        log_sleep: Sleep,
        log_flush_interval: float | None,
        tools: WorkerTools,
        trace: TaskTrace | None = None,
    ) -> None:
        self._running = running
        self._tools = tools
        self._trace: TaskTrace = trace or NullTaskTrace()
        self._instance = instance
        self._response = response
        self._clock = clock
        self._timer_sleep = timer_sleep
        self._log_sleep = log_sleep
        self._log_flush_interval = log_flush_interval
        self._env = TaskEnvironment(
            instance,
            task_variables(
                running.task_id,
                instance.working_directory,
                response.environment,
                self._trace.environment(),
            ),
            response.secrets_to_mask,
        )
        self._background: list[tuple[BackgroundProcess, CommandLog]] = []
        self._caches = TaskCaches(
            running=running,
            instance=instance,
            env=self._env,
            run_scripts=self._run_scripts,
            tools=tools,
        )
        self._artifacts = TaskArtifacts(
            running=running, instance=instance, env=self._env, tools=tools
        )
        self._state = ExecutionState()
        self._deadline: float | None = None

    async def run_all(self) -> list[CommandResult]:
        """Run or skip every command in order; return the final result of each."""
        if self._response.timeout_in_seconds > 0:
            self._deadline = self._clock.monotonic() + self._response.timeout_in_seconds
        results: list[CommandResult] = []
        await self._env.prepare()
        for command in self._response.commands:
            if self._running.cancel_requested.is_set() and not self._state.cancelled:
                self._state = after_cancel(self._state)
            if self._deadline_passed():
                self._state = after_timeout(self._state)
            if not should_run(command, self._state):
                result = skipped(command)
                self._report(result)
            else:
                result = await self._run(command)
            results.append(result)
        return results

    async def stop_background(self) -> None:
        """Kill every background script of the task and send the rest of its output."""
        background, self._background = self._background, []
        for process, output in background:
            try:
                await process.stop()
            finally:
                await output.close()

    def _deadline_passed(self) -> bool:
        return (
            self._deadline is not None
            and not self._state.timed_out
            and self._clock.monotonic() >= self._deadline
        )

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock.monotonic())

    def _report(self, result: CommandResult) -> None:
        self._running.outbox.send_command_updates(self._running.ref, [result])

    def _output(self, command: Command) -> CommandLog:
        return CommandLog(
            self._running.outbox,
            self._running.ref,
            command.name,
            self._env.masks,
            flush_interval=self._log_flush_interval,
            sleep=self._log_sleep,
            warn_unmaskable=self._tools.warn_unmaskable,
        )

    async def _run(self, command: Command) -> CommandResult:
        self._report(CommandResult(command.name, CommandStatus.EXECUTING))
        started = self._clock.monotonic()
        output = self._output(command)
        keep_output_open = False
        try:
            with self._trace.step(f"command/{command.name}"):
                status, keep_output_open = await self._bounded(command, output)
        finally:
            if not keep_output_open:
                await output.close()
        self._state = after_command(self._state, command, status)
        duration = int(max(0.0, self._clock.monotonic() - started) * 1_000_000_000)
        result = CommandResult(command.name, status, duration_in_nanos=duration)
        self._report(result)
        return result

    async def _bounded(self, command: Command, output: CommandLog) -> tuple[CommandStatus, bool]:
        """Run the instruction until it ends, the limit expires or the task is cancelled."""
        limit = command_limit(self._state, self._remaining())
        work = asyncio.ensure_future(self._instruction(command, output))
        cancel = asyncio.ensure_future(self._running.cancel_requested.wait())
        waiters: set[asyncio.Future[object]] = {work, cancel}  # type: ignore[arg-type]
        timer: asyncio.Future[None] | None = None
        if limit is not None:
            timer = asyncio.ensure_future(self._timer_sleep(limit))
            waiters.add(timer)  # type: ignore[arg-type]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancel.cancel()
            if timer is not None:
                timer.cancel()
        if work.done():
            return work.result()
        # Interrupt the command: the instance sends SIGINT, then SIGKILL after its grace.
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        if self._running.cancel_requested.is_set():
            log.info("command %s of task %s aborted", command.name, self._running.task_id)
            self._state = after_cancel(self._state)
        else:
            log.info("command %s of task %s timed out", command.name, self._running.task_id)
            await output.line(f"Timed out after {limit:g} seconds.")
            self._state = after_timeout(self._state)
        return CommandStatus.ABORTED, False

    async def _instruction(
        self, command: Command, output: CommandLog
    ) -> tuple[CommandStatus, bool]:
        """Run one instruction; return its status and whether its output stays open."""
        instruction = command.instruction
        try:
            match instruction:
                case ScriptInstruction(scripts=scripts):
                    return await self._script(scripts, output), False
                case BackgroundScriptInstruction(scripts=scripts):
                    return await self._background_script(scripts, output), True
                case FileInstruction():
                    return await self._write_file(instruction, output), False
                case CloneInstruction():
                    return await self._clone(output), False
                case ExitInstruction():
                    return CommandStatus.COMPLETED, False
                case CacheInstruction():
                    return await self._caches.restore(command.name, instruction, output), False
                case UploadCacheInstruction(cache_name=cache_name):
                    return await self._caches.upload(cache_name, output), False
                case ArtifactsInstruction():
                    return await self._artifacts.upload(command.name, instruction, output), False
                case _:
                    await output.line(
                        f"The {instruction_name(command)} instruction of command "
                        f"{command.name!r} is not supported by this worker."
                    )
                    return CommandStatus.FAILED, False
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("command %s of task %s: %s", command.name, self._running.task_id, error)
            await output.line(f"Command {command.name!r} failed: {error}")
            return CommandStatus.FAILED, False

    async def _script_text(self, scripts: tuple[str, ...], env: Mapping[str, str]) -> str:
        """The text handed to the instance: the lines, or the expanded first line (``direct``)."""
        if env.get(SHELL_VARIABLE) == DIRECT:
            # The agent ran only the first line without a shell, its references expanded.
            extra = {ENV_FILE_VARIABLE: env[ENV_FILE_VARIABLE]}
            return await self._env.expand_for_command(scripts[0] if scripts else "", extra)
        return "\n".join(scripts)

    async def _script(self, scripts: tuple[str, ...], output: CommandLog) -> CommandStatus:
        tracked = LineEndTracker(output)
        code = await self._run_scripts(scripts, tracked)
        if code != 0:
            # The wire carries no exit code: the log's last line does (domain.exit_status).
            await tracked.exit_status(code)
        return status_of_exit_code(code)

    async def _run_scripts(self, scripts: Sequence[str], output: OutputSink) -> int:
        """Run script lines with the command's environment and ``$CIRRUS_ENV``; the exit code.

        Also the cache instructions' fingerprint and populate scripts.
        """
        env_file = await self._instance.create_env_file()
        env = await self._env.for_command({ENV_FILE_VARIABLE: env_file})
        text = await self._script_text(tuple(scripts), env)
        code = await self._instance.run_script(text, env, output)
        error = await self._env.merge_env_file(await self._instance.take_env_file(env_file))
        if error is not None:
            await output.write(f"{error}\n".encode())
        return code

    async def _background_script(
        self, scripts: tuple[str, ...], output: CommandLog
    ) -> CommandStatus:
        env_file = await self._instance.create_env_file()
        env = await self._env.for_command({ENV_FILE_VARIABLE: env_file})
        text = await self._script_text(scripts, env)
        process = await self._instance.start_background(text, env, output)
        self._background.append((process, output))
        # Read right after the start, as the agent did: a background script's later lines
        # cannot change the environment of the commands that run meanwhile.
        await self._take_env_file(env_file, output)
        return CommandStatus.COMPLETED

    async def _take_env_file(self, path: str, output: CommandLog) -> None:
        error = await self._env.merge_env_file(await self._instance.take_env_file(path))
        if error is not None:
            await output.line(error)

    async def _clone(self, output: CommandLog) -> CommandStatus:
        """Fetch the source on the worker host, then put its files into the instance.

        The instance needs neither git nor network access; the files land in
        ``CIRRUS_WORKING_DIR``, as the agent's clone did.
        """
        env = await self._env.for_command()
        if not has_source(env):
            await output.line(NO_SOURCE_MESSAGE)
            return CommandStatus.COMPLETED
        client = self._running.upstream.client
        headers = call_headers(client, self._running.ref)
        async with self._tools.workspace(self._running.task_id) as workspace:
            directory = os.path.join(workspace, "source")
            try:
                await self._tools.fetch_source(
                    env, directory, output, endpoint=client.endpoint, headers=headers
                )
            except CloneError as error:
                await output.line(str(error))
                return CommandStatus.FAILED
            await self._instance.copy_in(directory, env[WORKING_DIR_VARIABLE])
        return CommandStatus.COMPLETED

    async def _write_file(self, instruction: FileInstruction, output: CommandLog) -> CommandStatus:
        env = await self._env.for_command()
        if instruction.from_contents is not None:
            contents = instruction.from_contents
        else:
            variable = instruction.from_environment_variable or ""
            if variable not in env:
                await output.line(f"Environment variable {variable!r} is not set.")
                return CommandStatus.FAILED
            contents = env[variable]
        path = await self._env.expand_for_command(instruction.destination_path)
        if env[WORKING_DIR_VARIABLE] != self._instance.working_directory:
            # Relative to the task's working directory, which CIRRUS_WORKING_DIR has moved.
            path = posixpath.join(env[WORKING_DIR_VARIABLE], path)
        await self._instance.write_file(path, contents.encode("utf-8"))
        return CommandStatus.COMPLETED
