"""A failed script's exit status: written as its log's last line, shown by the follow view."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.controller_api import CommandInfo
from app.build_view import command_status_line, follow_build
from domain.exit_status import LineEndTracker, exit_status_in, exit_status_line
from tests.unit.test_build_view import ScriptedController, build, plain_view, task


class Collected:
    """An ``OutputSink`` keeping every byte."""

    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


@given(st.integers(min_value=0, max_value=255))
def test_an_exit_status_line_reads_back_as_its_status(code: int) -> None:
    assert exit_status_in(exit_status_line(code)) == code


@pytest.mark.parametrize("line", ["", "exit status", "exit status three", "my exit status 3"])
def test_other_lines_carry_no_exit_status(line: str) -> None:
    assert exit_status_in(line) is None


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (b"", b"exit status 3\n"),
        (b"done\n", b"done\nexit status 3\n"),
        (b"no newline", b"no newline\nexit status 3\n"),
    ],
)
async def test_the_exit_status_goes_on_a_line_of_its_own(output: bytes, expected: bytes) -> None:
    sink = Collected()
    tracked = LineEndTracker(sink)
    await tracked.write(output)
    await tracked.exit_status(3)
    assert sink.data == expected


def test_a_failed_commands_line_carries_its_exit_status() -> None:
    failed = CommandInfo(name="main", status="FAILED", durationInNanos=2_000_000_000)
    assert command_status_line("unit", failed, 3) == "unit:main FAILED (exit status 3) in 2.0s"
    assert command_status_line("unit", failed) == "unit:main FAILED in 2.0s"
    done = CommandInfo(name="main", status="COMPLETED")
    assert command_status_line("unit", done, 0) == "unit:main COMPLETED"


async def test_the_follow_view_shows_the_exit_status_the_log_ends_with() -> None:
    states = [
        (
            build("EXECUTING", ("1", "pack", "EXECUTING")),
            {"1": task("1", "pack", "EXECUTING", [("main", "EXECUTING")], worker="w")},
        ),
        (
            build("FAILED", ("1", "pack", "FAILED")),
            {"1": task("1", "pack", "FAILED", [("main", "FAILED"), ("other", "FAILED")])},
        ),
    ]
    appends = [
        (0, "1", "main", b"packing\n"),
        (1, "1", "main", b"exit status 3\n"),
        (1, "1", "other", b"no exit status here\n"),
    ]
    view, out = plain_view()

    await follow_build(ScriptedController(states, appends), "7", view, poll_seconds=0)

    lines = out.getvalue().splitlines()
    assert "pack:main | exit status 3" in lines
    assert "pack:main FAILED (exit status 3)" in lines
    assert "pack:other FAILED" in lines
