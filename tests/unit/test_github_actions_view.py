"""``-o github-actions``: each task's lines in one contiguous group, failures annotated."""

from __future__ import annotations

import io

from rich.console import Console

from adapters.controller_api import CommandInfo, TaskInfo
from app.github_actions_view import GithubActionsView, workflow_escape


def task(task_id: str, name: str, status: str, **extra: str) -> TaskInfo:
    return TaskInfo.model_validate({"id": task_id, "name": name, "status": status, **extra})


def view() -> tuple[GithubActionsView, io.StringIO]:
    out = io.StringIO()
    # Even on a terminal: the output is a CI log, never a live table.
    return GithubActionsView(Console(file=out, force_terminal=True, width=80)), out


def test_interleaved_tasks_come_out_as_one_contiguous_group_each() -> None:
    shown, out = view()
    lint, test = task("1", "lint", "EXECUTING"), task("2", "test", "EXECUTING")

    shown.task_log(lint, "main", "lint 1")
    shown.task_log(test, "main", "test 1")
    shown.task_log(lint, "main", "lint 2")
    shown.command_finished(lint, CommandInfo(name="main", status="COMPLETED"))
    shown.task_changed(task("1", "lint", "COMPLETED"))
    shown.task_log(test, "main", "test 2")
    shown.task_changed(task("2", "test", "FAILED", failureMessage='command "main" failed'))

    assert out.getvalue().splitlines() == [
        "::group::lint",
        "lint:main | lint 1",
        "lint:main | lint 2",
        "lint:main COMPLETED",
        "::endgroup::",
        "lint (task 1): COMPLETED",
        "::group::test",
        "test:main | test 1",
        "test:main | test 2",
        "::endgroup::",
        'test (task 2): FAILED: command "main" failed',
        '::error title=test::command "main" failed',
    ]


def test_a_task_that_ends_while_another_streams_prints_its_held_group_whole() -> None:
    shown, out = view()
    first, second = task("1", "a", "EXECUTING"), task("2", "b", "EXECUTING")

    shown.task_log(first, "main", "a says")
    shown.task_log(second, "main", "b says")
    shown.task_changed(task("2", "b", "ABORTED"))
    shown.stop()

    assert out.getvalue().splitlines() == [
        "::group::a",
        "a:main | a says",
        "::endgroup::",
        "::group::b",
        "b:main | b says",
        "::endgroup::",
        "b (task 2): ABORTED",
        "::error title=b::ABORTED",
        "::group::a",
        "::endgroup::",
    ]


def test_workflow_command_messages_escape_percent_and_line_breaks() -> None:
    assert workflow_escape("50%\r\ndone") == "50%25%0D%0Adone"
