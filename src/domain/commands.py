"""Command sequencing of one task (PROTOCOL.md "Execution semantics"), as pure decisions.

The task runner asks ``should_run`` before each command and feeds every outcome back with
``after_command``; timeouts and cancellation are folded in with ``after_timeout`` and
``after_cancel``. Nothing here runs a process or reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.protocol import (
    Command,
    CommandResult,
    CommandStatus,
    ExecutionBehaviour,
    ExitInstruction,
)

# Each command that runs after the task's own timeout expired gets this limit of its own.
AFTER_TIMEOUT_LIMIT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """What happened so far in a task: a failure, a timeout, an exit instruction, a cancellation."""

    failed: bool = False
    timed_out: bool = False
    exited: bool = False
    cancelled: bool = False


def should_run(command: Command, state: ExecutionState) -> bool:
    """Return whether ``command`` runs given the state so far (else it is reported SKIPPED)."""
    if state.cancelled:
        return False
    behaviour = command.execution_behaviour
    if behaviour is ExecutionBehaviour.ALWAYS:
        return True
    if state.exited:
        return False
    if behaviour is ExecutionBehaviour.ON_TIMEOUT:
        return state.timed_out
    if behaviour is ExecutionBehaviour.ON_FAILURE:
        return state.failed
    return not state.failed and not state.timed_out


def after_command(state: ExecutionState, command: Command, status: CommandStatus) -> ExecutionState:
    """Return the state after ``command`` ended with ``status`` (FAILED marks the task failed)."""
    if status is CommandStatus.FAILED:
        return replace(state, failed=True)
    if status is CommandStatus.COMPLETED and isinstance(command.instruction, ExitInstruction):
        return replace(state, exited=True)
    return state


def after_timeout(state: ExecutionState) -> ExecutionState:
    """Return the state once the task's timeout expired (not a failure)."""
    return replace(state, timed_out=True)


def after_cancel(state: ExecutionState) -> ExecutionState:
    """Return the state once the task was cancelled: nothing runs any more."""
    return replace(state, cancelled=True)


def command_limit(state: ExecutionState, remaining_task_seconds: float | None) -> float | None:
    """Return the next command's time limit: the task's remaining time, or 5 min after a timeout."""
    if state.timed_out:
        return AFTER_TIMEOUT_LIMIT_SECONDS
    return remaining_task_seconds


def skipped(command: Command) -> CommandResult:
    """Return the result of a command that does not run."""
    return CommandResult(name=command.name, status=CommandStatus.SKIPPED)


def status_of_exit_code(exit_code: int) -> CommandStatus:
    """Return COMPLETED for exit status 0, else FAILED."""
    return CommandStatus.COMPLETED if exit_code == 0 else CommandStatus.FAILED
