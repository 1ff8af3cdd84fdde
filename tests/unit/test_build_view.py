"""The build view: lines and table rendered from the API's answers, and following a build
through a scripted controller."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from adapters.controller_api import BuildInfo, CommandInfo, TaskInfo
from app.build_view import (
    BuildView,
    LogLines,
    TaskCannotRun,
    build_line,
    command_status_line,
    current_command,
    follow_build,
    format_duration,
    log_line,
    render_build,
    submitted_lines,
    task_status_line,
)


def build(status: str, *tasks: tuple[str, str, str]) -> BuildInfo:
    return BuildInfo.model_validate(
        {
            "id": "7",
            "status": status,
            "tasks": [{"id": i, "name": n, "status": s} for i, n, s in tasks],
        }
    )


def task(
    task_id: str, name: str, status: str, commands: Sequence[tuple[str, str]] = (), **extra: Any
) -> TaskInfo:
    return TaskInfo.model_validate(
        {
            "id": task_id,
            "buildId": "7",
            "name": name,
            "status": status,
            "commands": [{"name": c, "status": s, "durationInNanos": "0"} for c, s in commands],
            **extra,
        }
    )


def plain_view() -> tuple[BuildView, io.StringIO]:
    out = io.StringIO()
    return BuildView(Console(file=out, force_terminal=False, width=120)), out


def test_submission_lists_the_build_and_each_task() -> None:
    submitted = build("EXECUTING", ("1", "lint", "SCHEDULED"), ("2", "pack", "CREATED"))
    assert submitted_lines(submitted) == [
        "build 7: 2 task(s), EXECUTING",
        "  task 1 lint: SCHEDULED",
        "  task 2 pack: CREATED",
    ]


def test_a_task_line_names_its_worker_while_executing_and_its_failure_when_final() -> None:
    running = task("1", "lint", "EXECUTING", worker="mac-1")
    failed = task("1", "lint", "FAILED", failureMessage='command "main"\nfailed')
    assert task_status_line(running) == "lint (task 1): EXECUTING on worker mac-1"
    assert task_status_line(failed) == 'lint (task 1): FAILED: command "main" failed'


def test_a_task_skipped_by_its_condition_shows_the_reason() -> None:
    skipped = task("2", "lint", "SKIPPED", skipReason="skip: true")
    assert task_status_line(skipped) == "lint (task 2): SKIPPED: skip: true"


def test_command_and_log_lines_carry_task_and_command_names() -> None:
    command = CommandInfo.model_validate(
        {"name": "test", "status": "FAILED", "durationInNanos": "65000000000"}
    )
    assert command_status_line("unit", command) == "unit:test FAILED in 1m05s"
    assert log_line("unit", "test", "ok 1") == "unit:test | ok 1"
    assert build_line(build("COMPLETED")) == "build 7: COMPLETED"


def test_durations_are_short() -> None:
    assert [format_duration(s) for s in (0.04, 9.96, 42, 185, 7380)] == [
        "0.0s",
        "10.0s",
        "42s",
        "3m05s",
        "2h03m",
    ]


def test_the_current_command_is_the_executing_one_else_the_last_that_ran() -> None:
    running = task("1", "t", "EXECUTING", [("a", "COMPLETED"), ("b", "EXECUTING"), ("c", "")])
    finished = task("1", "t", "FAILED", [("a", "COMPLETED"), ("b", "FAILED"), ("c", "SKIPPED")])
    assert current_command(running) == "b"
    assert current_command(finished) == "b"
    assert current_command(None) == ""


def test_the_live_table_shows_every_task_with_status_command_and_elapsed_time() -> None:
    shown = build("EXECUTING", ("1", "lint", "COMPLETED"), ("2", "pack", "SCHEDULED"))
    details = {"1": task("1", "lint", "COMPLETED", [("check", "COMPLETED")])}
    console = Console(record=True, width=100, force_terminal=False)
    console.print(render_build(shown, details, {"1": 3.25}))
    text = console.export_text()
    assert "build 7" in text
    lint_row = next(line for line in text.splitlines() if "lint" in line)
    assert all(part in lint_row for part in ("1", "COMPLETED", "check", "3.2s"))
    pack_row = next(line for line in text.splitlines() if "pack" in line)
    assert "SCHEDULED" in pack_row
    assert "build: EXECUTING" in text


@given(st.text(), st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_log_lines_do_not_depend_on_how_the_bytes_were_split(text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    whole = LogLines()
    expected = whole.feed(data) + whole.flush()
    pieces = LogLines()
    got: list[str] = []
    start = 0
    for cut in sorted(min(cut, len(data)) for cut in cuts):
        got += pieces.feed(data[start:cut])
        start = cut
    got += pieces.feed(data[start:]) + pieces.flush()
    assert got == expected
    # Every line comes back with its line break; the last one is shown even without one.
    normalized = text.replace("\r\n", "\n")
    terminated = normalized if normalized.endswith("\n") or not normalized else normalized + "\n"
    assert "".join(f"{line}\n" for line in expected) == terminated


def test_off_a_terminal_the_view_writes_plain_lines() -> None:
    view, out = plain_view()
    assert not view.live
    view.start()
    view.line("[bold]not markup[/bold]", "red")
    view.stop()
    assert out.getvalue() == "[bold]not markup[/bold]\n"


class ScriptedController:
    """Answers ``get_build``/``get_task`` from a script of states, one state per poll."""

    def __init__(
        self,
        states: list[tuple[BuildInfo, dict[str, TaskInfo]]],
        appends: list[tuple[int, str, str, bytes]],
    ) -> None:
        self.states = states
        self.pending = appends  # (poll index, task id, command, bytes appended before it)
        self.index = 0
        self.logs: dict[tuple[str, str], bytes] = {}

    async def get_build(self, build_id: str) -> BuildInfo:
        assert build_id == "7"
        self.index = min(self.index + 1, len(self.states))
        for poll, task_id, command, data in self.pending:
            if poll == self.index - 1:
                self.logs[(task_id, command)] = self.logs.get((task_id, command), b"") + data
        self.pending = [p for p in self.pending if p[0] != self.index - 1]
        return self.states[self.index - 1][0]

    async def get_task(self, task_id: str) -> TaskInfo:
        return self.states[self.index - 1][1][task_id]

    async def task_log(self, task_id: str, command: str, offset: int = 0) -> bytes:
        return self.logs.get((task_id, command), b"")[offset:]


async def test_following_a_build_streams_statuses_and_logs_until_it_is_final() -> None:
    states = [
        (
            build("EXECUTING", ("1", "lint", "EXECUTING"), ("2", "pack", "CREATED")),
            {
                "1": task("1", "lint", "EXECUTING", [("check", "EXECUTING")], worker="w"),
                "2": task("2", "pack", "CREATED", [("main", "CREATED")]),
            },
        ),
        (
            build("EXECUTING", ("1", "lint", "COMPLETED"), ("2", "pack", "EXECUTING")),
            {
                "1": task("1", "lint", "COMPLETED", [("check", "COMPLETED")], worker="w"),
                "2": task("2", "pack", "EXECUTING", [("main", "EXECUTING")], worker="w"),
            },
        ),
        (
            build("FAILED", ("1", "lint", "COMPLETED"), ("2", "pack", "FAILED")),
            {
                "1": task("1", "lint", "COMPLETED", [("check", "COMPLETED")]),
                "2": task("2", "pack", "FAILED", [("main", "FAILED")], failureMessage="boom"),
            },
        ),
    ]
    controller = ScriptedController(
        states,
        [
            (0, "1", "check", b"first li"),
            (1, "1", "check", "ne \u00e9\n".encode()),
            (1, "2", "main", b"packing\nno newline at the end"),
        ],
    )
    view, out = plain_view()

    final = await follow_build(controller, "7", view, poll_seconds=0)

    assert final.status == "FAILED"
    assert out.getvalue().splitlines() == [
        "lint (task 1): EXECUTING on worker w",
        "lint:check | first line \u00e9",
        "lint:check COMPLETED",
        "lint (task 1): COMPLETED",
        "pack (task 2): EXECUTING on worker w",
        "pack:main | packing",
        "pack:main | no newline at the end",
        "pack:main FAILED",
        "pack (task 2): FAILED: boom",
        "build 7: FAILED",
    ]


async def test_following_stops_at_a_final_build_whose_manual_task_still_waits() -> None:
    waiting = task("2", "deploy", "CREATED", pendingReason="waiting for a manual trigger")
    states = [
        (
            build("EXECUTING", ("1", "test", "EXECUTING"), ("2", "deploy", "CREATED")),
            {"1": task("1", "test", "EXECUTING", worker="w"), "2": waiting},
        ),
        (
            build("COMPLETED", ("1", "test", "COMPLETED"), ("2", "deploy", "CREATED")),
            {"1": task("1", "test", "COMPLETED"), "2": waiting},
        ),
    ]
    view, out = plain_view()

    async with asyncio.timeout(5):  # following forever would repeat the last state
        final = await follow_build(ScriptedController(states, []), "7", view, poll_seconds=0)

    assert final.status == "COMPLETED"
    assert out.getvalue().splitlines() == [
        "test (task 1): EXECUTING on worker w",
        "test (task 1): COMPLETED",
        "build 7: COMPLETED",
    ]


class Ticking:
    """A monotonic clock that advances ``step`` seconds per reading."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def waiting_states(reasons: Sequence[str]) -> list[tuple[BuildInfo, dict[str, TaskInfo]]]:
    """One SCHEDULED task waiting with each reason in turn, then the build completes."""
    states = [
        (
            build("EXECUTING", ("1", "mac", "SCHEDULED")),
            {"1": task("1", "mac", "SCHEDULED", pendingReason=reason)},
        )
        for reason in reasons
    ]
    done = task("1", "mac", "COMPLETED")
    states.append((build("COMPLETED", ("1", "mac", "COMPLETED")), {"1": done}))
    return states


async def test_a_waiting_tasks_reason_is_shown_after_the_delay_once_per_new_reason() -> None:
    reasons = ["all matching workers are busy"] * 3 + ["no worker is registered"] * 2
    view, out = plain_view()

    await follow_build(
        ScriptedController(waiting_states(reasons), []),
        "7",
        view,
        poll_seconds=0,
        pending_after=2.0,
        monotonic=Ticking(1.0),
    )

    assert out.getvalue().splitlines() == [
        "mac (task 1): waiting: all matching workers are busy",
        "mac (task 1): waiting: no worker is registered",
        "mac (task 1): COMPLETED",
        "build 7: COMPLETED",
    ]


async def test_a_reason_is_not_shown_before_the_task_waited_long_enough() -> None:
    view, out = plain_view()

    await follow_build(
        ScriptedController(waiting_states(["all matching workers are busy"] * 3), []),
        "7",
        view,
        poll_seconds=0,
        pending_after=60.0,
        monotonic=Ticking(1.0),
    )

    assert "waiting" not in out.getvalue()


async def test_a_hopeless_reason_stops_following_with_task_cannot_run() -> None:
    reason = "no worker with labels arch=arm64, os=darwin"
    view, out = plain_view()

    with pytest.raises(TaskCannotRun) as caught:
        await follow_build(
            ScriptedController(waiting_states([reason] * 5), []),
            "7",
            view,
            poll_seconds=0,
            pending_after=1.0,
            hopeless=lambda task: task.pending_reason.startswith("no worker with labels"),
            monotonic=Ticking(1.0),
        )

    assert caught.value.reason == reason
    assert str(caught.value) == f"mac (task 1) cannot run: {reason}"
    assert out.getvalue().splitlines() == [f"mac (task 1): waiting: {reason}"]
