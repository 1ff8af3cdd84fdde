"""``cirrus run -o github-actions``: each task's output folded in a GitHub Actions log group.

GitHub folds the lines between ``::group::NAME`` and ``::endgroup::``; groups do not nest and
must be contiguous, while tasks run side by side. So one task at a time streams live in an open
group; the lines of the others are held until that group closes (or they end), then printed in
one group each. A task that fails adds an ``::error::`` annotation, which GitHub shows on the
run's summary.
"""

from __future__ import annotations

from rich.console import Console

from app.build_view import BuildView, command_status_line, is_final, log_line, task_status_line
from domain.controller_answers import CommandAnswer, TaskAnswer

FAILED_STATUSES = frozenset({"FAILED", "ABORTED"})


def workflow_escape(text: str) -> str:
    """Escape a workflow command's message (``%``, CR and LF, as GitHub's toolkit does)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def group_name(task: TaskAnswer) -> str:
    """The title of a task's group: its name."""
    return workflow_escape(task.name)


class GithubActionsView(BuildView):
    """A plain-line view that folds each task's log lines and command results in a group."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._open: str | None = None  # the task id whose group is open
        self._held: dict[str, tuple[TaskAnswer, list[str]]] = {}
        self._names: dict[str, str] = {}  # group titles by task id

    @property
    def live(self) -> bool:
        """Never a live table: the output is a CI log."""
        return False

    def task_log(self, task: TaskAnswer, command: str, text: str) -> None:
        """Stream the line in the task's open group, or hold it until its group opens."""
        self._task_line(task, log_line(task.name, command, text))

    def command_finished(
        self, task: TaskAnswer, command: CommandAnswer, exit_status: int | None = None
    ) -> None:
        """A command's result belongs to its task's group."""
        self._task_line(task, command_status_line(task.name, command, exit_status))

    def task_changed(self, task: TaskAnswer) -> None:
        """Close (or print whole) a finished task's group, then print its status line."""
        if not is_final(task.status):
            self.line(task_status_line(task))
            return
        live = None if self._open == task.id else self._open
        if live is not None:
            # Groups cannot nest: the live one is closed around this task's, then reopened.
            self.line("::endgroup::")
        if self._open == task.id:
            self.line("::endgroup::")
            self._open = None
        elif task.id in self._held:
            held_task, lines = self._held.pop(task.id)
            self._print_group(held_task, lines, close=True)
        self.line(task_status_line(task))
        if task.status in FAILED_STATUSES:
            message = task.failure_message or task.status
            self.line(f"::error title={group_name(task)}::{workflow_escape(message)}")
        if live is not None:
            self.line(f"::group::{self._names[live]}")
        elif self._held:
            # The next held task streams live from now on.
            task_id = next(iter(self._held))
            held_task, lines = self._held.pop(task_id)
            self._print_group(held_task, lines, close=False)
            self._open = task_id
            self._names[task_id] = group_name(held_task)

    def stop(self) -> None:
        """Close a group left open (the build was interrupted) and print what was held."""
        if self._open is not None:
            self.line("::endgroup::")
            self._open = None
        for held_task, lines in self._held.values():
            self._print_group(held_task, lines, close=True)
        self._held.clear()
        super().stop()

    def _task_line(self, task: TaskAnswer, text: str) -> None:
        if self._open is None:
            self.line(f"::group::{group_name(task)}")
            self._open = task.id
            self._names[task.id] = group_name(task)
        if self._open == task.id:
            self.line(text)
        else:
            self._held.setdefault(task.id, (task, []))[1].append(text)

    def _print_group(self, task: TaskAnswer, lines: list[str], *, close: bool) -> None:
        self.line(f"::group::{group_name(task)}")
        for text in lines:
            self.line(text)
        if close:
            self.line("::endgroup::")
