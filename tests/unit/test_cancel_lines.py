"""The lines of ``task cancel``, ``build cancel`` and Ctrl-C on ``build submit --follow``."""

from __future__ import annotations

from adapters.controller_api import CancelInfo
from app.build_view import cancel_line, stopped_following_line


def test_a_running_task_is_cancel_requested_not_reported_as_executing() -> None:
    line = cancel_line(CancelInfo(id="7", status="EXECUTING"))
    assert line.startswith("task 7: cancel requested (still EXECUTING")


def test_a_waiting_task_is_cancelled_at_once() -> None:
    assert cancel_line(CancelInfo(id="8", status="ABORTED")) == "task 8: cancelled (ABORTED)"


def test_a_task_that_already_ended_has_nothing_to_cancel() -> None:
    line = cancel_line(CancelInfo(id="9", status="COMPLETED"))
    assert line == "task 9: already COMPLETED, nothing to cancel"


def test_ctrl_c_says_the_build_continues_and_how_to_cancel_it() -> None:
    assert stopped_following_line("12") == (
        "stopped following build 12; it continues (cancel: `cirrus build cancel 12`)"
    )
