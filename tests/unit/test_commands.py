"""Command sequencing: which command runs after what happened so far."""

from __future__ import annotations

import pytest

from domain.commands import (
    AFTER_TIMEOUT_LIMIT_SECONDS,
    ExecutionState,
    after_cancel,
    after_command,
    after_timeout,
    command_limit,
    should_run,
    skipped,
    status_of_exit_code,
)
from domain.protocol import (
    Command,
    CommandResult,
    CommandStatus,
    ExecutionBehaviour,
    ExitInstruction,
    ScriptInstruction,
)

S = ExecutionBehaviour.ON_SUCCESS
F = ExecutionBehaviour.ON_FAILURE
A = ExecutionBehaviour.ALWAYS
T = ExecutionBehaviour.ON_TIMEOUT


def script(name: str, behaviour: ExecutionBehaviour = S) -> Command:
    instruction = ScriptInstruction(("true",))
    return Command(name=name, instruction=instruction, execution_behaviour=behaviour)


# (state, behaviour) -> runs?
DECISIONS = [
    (ExecutionState(), S, True),
    (ExecutionState(), F, False),
    (ExecutionState(), A, True),
    (ExecutionState(), T, False),
    (ExecutionState(failed=True), S, False),
    (ExecutionState(failed=True), F, True),
    (ExecutionState(failed=True), A, True),
    (ExecutionState(failed=True), T, False),
    (ExecutionState(timed_out=True), S, False),
    (ExecutionState(timed_out=True), F, False),
    (ExecutionState(timed_out=True), A, True),
    (ExecutionState(timed_out=True), T, True),
    (ExecutionState(failed=True, timed_out=True), S, False),
    (ExecutionState(failed=True, timed_out=True), F, True),
    (ExecutionState(failed=True, timed_out=True), A, True),
    (ExecutionState(failed=True, timed_out=True), T, True),
    (ExecutionState(exited=True), S, False),
    (ExecutionState(exited=True), F, False),
    (ExecutionState(exited=True), A, True),
    (ExecutionState(exited=True), T, False),
    (ExecutionState(exited=True, failed=True), F, False),
    (ExecutionState(exited=True, timed_out=True), T, False),
    (ExecutionState(cancelled=True), S, False),
    (ExecutionState(cancelled=True), F, False),
    (ExecutionState(cancelled=True), A, False),
    (ExecutionState(cancelled=True), T, False),
    (ExecutionState(cancelled=True, failed=True, timed_out=True), A, False),
    (ExecutionState(cancelled=True, failed=True, timed_out=True), T, False),
]


@pytest.mark.parametrize(("state", "behaviour", "runs"), DECISIONS)
def test_each_behaviour_runs_exactly_in_the_states_the_protocol_names(
    state: ExecutionState, behaviour: ExecutionBehaviour, runs: bool
) -> None:
    assert should_run(script("x", behaviour), state) is runs


def run_sequence(
    commands: list[Command],
    outcomes: dict[str, CommandStatus],
    *,
    timeout_during: str | None = None,
    cancel_during: str | None = None,
) -> list[CommandResult]:
    """Drive the pure functions the way the task runner does; return every command's result."""
    state = ExecutionState()
    results = []
    for command in commands:
        if not should_run(command, state):
            results.append(skipped(command))
            continue
        if command.name == cancel_during:
            results.append(CommandResult(command.name, CommandStatus.ABORTED))
            state = after_cancel(state)
            continue
        if command.name == timeout_during:
            results.append(CommandResult(command.name, CommandStatus.ABORTED))
            state = after_timeout(state)
            continue
        status = outcomes.get(command.name, CommandStatus.COMPLETED)
        results.append(CommandResult(command.name, status))
        state = after_command(state, command, status)
    return results


def statuses(results: list[CommandResult]) -> list[tuple[str, str]]:
    return [(r.name, r.status.name) for r in results]


def test_all_successful_commands_complete_and_failure_handlers_are_skipped() -> None:
    commands = [script("a"), script("b"), script("f", F), script("al", A), script("t", T)]
    assert statuses(run_sequence(commands, {})) == [
        ("a", "COMPLETED"),
        ("b", "COMPLETED"),
        ("f", "SKIPPED"),
        ("al", "COMPLETED"),
        ("t", "SKIPPED"),
    ]


def test_a_failure_skips_later_on_success_commands_and_runs_on_failure_ones() -> None:
    commands = [script("a"), script("b"), script("f", F), script("al", A), script("c")]
    assert statuses(run_sequence(commands, {"a": CommandStatus.FAILED})) == [
        ("a", "FAILED"),
        ("b", "SKIPPED"),
        ("f", "COMPLETED"),
        ("al", "COMPLETED"),
        ("c", "SKIPPED"),
    ]


def test_a_timeout_aborts_the_running_command_and_runs_only_timeout_and_always_commands() -> None:
    commands = [script("a"), script("b"), script("f", F), script("t", T), script("al", A)]
    assert statuses(run_sequence(commands, {}, timeout_during="a")) == [
        ("a", "ABORTED"),
        ("b", "SKIPPED"),
        ("f", "SKIPPED"),
        ("t", "COMPLETED"),
        ("al", "COMPLETED"),
    ]


def test_after_a_failure_and_a_timeout_on_failure_commands_still_run() -> None:
    commands = [script("a"), script("f1", F), script("f2", F), script("t", T)]
    results = run_sequence(commands, {"a": CommandStatus.FAILED}, timeout_during="f1")
    assert statuses(results) == [
        ("a", "FAILED"),
        ("f1", "ABORTED"),
        ("f2", "COMPLETED"),
        ("t", "COMPLETED"),
    ]


def test_an_exit_instruction_skips_everything_after_it_but_always_commands() -> None:
    commands = [
        script("a"),
        Command(name="exit", instruction=ExitInstruction()),
        script("b"),
        script("f", F),
        script("t", T),
        script("al", A),
    ]
    assert statuses(run_sequence(commands, {})) == [
        ("a", "COMPLETED"),
        ("exit", "COMPLETED"),
        ("b", "SKIPPED"),
        ("f", "SKIPPED"),
        ("t", "SKIPPED"),
        ("al", "COMPLETED"),
    ]


def test_a_skipped_exit_instruction_does_not_end_the_task() -> None:
    commands = [
        script("a"),
        Command(name="exit", instruction=ExitInstruction()),
        script("f", F),
    ]
    assert statuses(run_sequence(commands, {"a": CommandStatus.FAILED})) == [
        ("a", "FAILED"),
        ("exit", "SKIPPED"),
        ("f", "COMPLETED"),
    ]


def test_cancellation_aborts_the_running_command_and_skips_everything_after_it() -> None:
    commands = [script("a"), script("b"), script("f", F), script("t", T), script("al", A)]
    assert statuses(run_sequence(commands, {}, cancel_during="b")) == [
        ("a", "COMPLETED"),
        ("b", "ABORTED"),
        ("f", "SKIPPED"),
        ("t", "SKIPPED"),
        ("al", "SKIPPED"),
    ]


def test_an_aborted_command_is_not_a_failure() -> None:
    state = after_command(ExecutionState(), script("a"), CommandStatus.ABORTED)
    assert state == ExecutionState()


@pytest.mark.parametrize(
    ("exit_code", "status"),
    [(0, CommandStatus.COMPLETED), (1, CommandStatus.FAILED), (-9, CommandStatus.FAILED)],
)
def test_exit_status_zero_completes_and_anything_else_fails(
    exit_code: int, status: CommandStatus
) -> None:
    assert status_of_exit_code(exit_code) is status


def test_commands_before_a_timeout_get_the_remaining_task_time() -> None:
    assert command_limit(ExecutionState(), 12.5) == 12.5
    assert command_limit(ExecutionState(), None) is None


def test_each_command_after_a_timeout_gets_its_own_five_minutes() -> None:
    limit = command_limit(ExecutionState(timed_out=True), 0.0)
    assert limit == AFTER_TIMEOUT_LIMIT_SECONDS == 300.0
