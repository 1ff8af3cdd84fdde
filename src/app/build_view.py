"""Following a build: its tasks' progress as a rich live table on a terminal, plain lines
elsewhere, with every command's log streamed line by line.

``follow_build`` polls the controller's HTTP API (a ``BuildReader``) and feeds a
``BuildView``; the formatting functions are pure so that the output can be tested as text.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from domain.controller_answers import (
    BuildAnswer,
    CommandAnswer,
    StatusAnswer,
    TaskAnswer,
    TestsAnswer,
)
from domain.controller_calls import BuildReader, ControllerApiError, TestResultsSource
from domain.exit_status import exit_status_in
from domain.source import BuildSource

FINAL_TASK_STATUSES = frozenset({"COMPLETED", "FAILED", "ABORTED", "SKIPPED"})
FINAL_COMMAND_STATUSES = frozenset({"COMPLETED", "FAILED", "ABORTED", "SKIPPED"})
WAITING_STATUSES = frozenset({"CREATED", "SCHEDULED"})
STATUS_STYLES = {
    "COMPLETED": "green",
    "FAILED": "bold red",
    "ABORTED": "red",
    "SKIPPED": "dim",
    "EXECUTING": "yellow",
    "SCHEDULED": "cyan",
    "CREATED": "dim",
}
DEFAULT_POLL_SECONDS = 0.5
PENDING_NOTICE_SECONDS = 5.0
"""How long a task waits for a worker before its ``pendingReason`` is shown (and re-read)."""
BuildT = TypeVar("BuildT", bound=BuildAnswer)
TaskT = TypeVar("TaskT", bound=TaskAnswer)


class TaskCannotRun(Exception):
    """A waiting task's ``pendingReason`` says no worker will ever run it."""

    def __init__(self, task: TaskAnswer, reason: str) -> None:
        super().__init__(f"{task.name} (task {task.id}) cannot run: {reason}")
        self.task = task
        self.reason = reason


def is_final(status: str) -> bool:
    """Return whether a task or build status never changes again."""
    return status in FINAL_TASK_STATUSES


def format_duration(seconds: float) -> str:
    """A duration as ``0.4s``, ``42s``, ``3m05s`` or ``2h03m``."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def source_line(source: BuildSource) -> str:
    """Where a build's code comes from, in one line: repository, branch/tag/PR, short commit,
    title, snapshot."""
    parts: list[str] = []
    if source.repository:
        parts.append(source.repository)
    if source.pr is not None:
        base = f" into {source.base_branch}" if source.base_branch else ""
        parts.append(f"PR #{source.pr} ({source.branch or '?'}{base})")
    elif source.tag:
        parts.append(f"tag {source.tag}")
    elif source.branch:
        parts.append(f"branch {source.branch}")
    if source.commit:
        title = " ".join(source.change_title.split())
        parts.append(f"commit {source.commit[:7]}" + (f" {title!r}" if title else ""))
    if source.snapshot:
        parts.append(f"snapshot {source.snapshot}")
    return "source: " + (", ".join(parts) or "none")


def submitted_lines(
    build: BuildAnswer, tests: Mapping[str, TestsAnswer] | None = None
) -> list[str]:
    """The lines printed after a submission: the build id, its source, then one line per
    task (and its test summary, for tasks in ``tests``)."""
    lines = [f"build {build.id}: {len(build.tasks)} task(s), {build.status}"]
    if build.source is not None:
        lines.append("  " + source_line(build.source))
    for task in build.tasks:
        lines.append(f"  task {task.id} {task.name}: {task.status}")
        summary = (tests or {}).get(task.id)
        if summary is not None:
            lines.append(f"    tests: {summary.line()}")
    return lines


async def task_tests(client: object, task_id: str) -> TestsAnswer | None:
    """A task's JUnit results, or None (none, or a controller without artifacts)."""
    if not isinstance(client, TestResultsSource):
        return None
    try:
        return (await client.task_artifacts(task_id)).tests
    except ControllerApiError:
        return None


def task_status_line(task: TaskAnswer) -> str:
    """The line printed when a task changes status."""
    line = f"{task.name} (task {task.id}): {task.status}"
    if task.status == "EXECUTING" and task.worker:
        line += f" on worker {task.worker}"
    reason = task.failure_message or (task.skip_reason if task.status == "SKIPPED" else "")
    if reason:
        line += f": {' '.join(reason.split())}"
    return line


def pending_line(task: TaskAnswer, reason: str) -> str:
    """The line printed when a task has waited a while for a worker: why it waits."""
    return f"{task.name} (task {task.id}): waiting: {' '.join(reason.split())}"


def command_status_line(
    task_name: str, command: CommandAnswer, exit_status: int | None = None
) -> str:
    """The line printed when a command of a task reaches a final status (a failed script's
    with its exit status)."""
    line = f"{task_name}:{command.name} {command.status}"
    if exit_status is not None and command.status == "FAILED":
        line += f" (exit status {exit_status})"
    if command.duration_in_nanos:
        line += f" in {format_duration(command.duration_in_nanos / 1e9)}"
    return line


def log_line(task_name: str, command: str, text: str) -> str:
    """One line of a command's log, prefixed with its task and command."""
    return f"{task_name}:{command} | {text}"


def build_line(build: BuildAnswer) -> str:
    """The last line: the build's final status."""
    return f"build {build.id}: {build.status}"


def stopped_following_line(build_id: str) -> str:
    """What Ctrl-C on ``build submit --follow`` prints: the build goes on without us."""
    return (
        f"stopped following build {build_id}; it continues "
        f"(cancel: `cirrus build cancel {build_id}`)"
    )


def cancel_line(answer: StatusAnswer) -> str:
    """The line for a cancel's answer: requested (running), done (was waiting) or too late."""
    if answer.status == "ABORTED":
        return f"task {answer.id}: cancelled (ABORTED)"
    if is_final(answer.status):
        return f"task {answer.id}: already {answer.status}, nothing to cancel"
    return (
        f"task {answer.id}: cancel requested (still {answer.status}; "
        "it turns ABORTED once its worker stops it)"
    )


def current_command(task: TaskAnswer | None) -> str:
    """The command a task is running (or the last one that ran), for the live table."""
    if task is None:
        return ""
    executing = [c.name for c in task.commands if c.status == "EXECUTING"]
    if executing:
        return executing[0]
    ran = [c.name for c in task.commands if c.status not in ("", "CREATED", "SKIPPED")]
    return ran[-1] if ran else ""


def render_build(
    build: BuildAnswer, details: Mapping[str, TaskAnswer], elapsed: Mapping[str, float]
) -> RenderableType:
    """The live table of a build: one row per task with status, command and elapsed time."""
    table = Table(title=f"build {build.id}", title_justify="left", expand=False)
    for column in ("task", "id", "status", "command", "elapsed"):
        table.add_column(column)
    for summary in build.tasks:
        task = details.get(summary.id)
        status = task.status if task is not None else summary.status
        seconds = elapsed.get(summary.id)
        table.add_row(
            summary.name,
            summary.id,
            Text(status, STATUS_STYLES.get(status, "")),
            current_command(task),
            "" if seconds is None else format_duration(seconds),
        )
    footer = Text.assemble("build: ", (build.status, STATUS_STYLES.get(build.status, "")))
    return Group(table, footer)


class LogLines:
    """Turns a command's log chunks into whole lines (UTF-8, split characters kept together)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> list[str]:
        """Return the lines completed by ``data``."""
        text = self._pending + self._decoder.decode(data)
        *lines, self._pending = text.replace("\r\n", "\n").split("\n")
        return lines

    def flush(self) -> list[str]:
        """Return the last unterminated line, if any."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return [rest] if rest else []


class BuildView:
    """Shows a followed build: a live table above streamed lines on a terminal, else lines."""

    def __init__(
        self, console: Console | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.console = console if console is not None else Console()
        self._monotonic = monotonic
        self._live: Live | None = None
        self._started: dict[str, float] = {}
        self._ended: dict[str, float] = {}

    @property
    def live(self) -> bool:
        """Whether a live table is drawn (the console is a terminal)."""
        return self.console.is_terminal

    def start(self) -> None:
        """Begin drawing the live table (on a terminal)."""
        if self.live and self._live is None:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()

    def stop(self) -> None:
        """Stop the live table, leaving its last picture."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def line(self, text: str, style: str = "") -> None:
        """Print one line (above the live table when there is one)."""
        if self.live:
            self.console.print(Text(text, style), soft_wrap=True)
        else:
            # Plain output: no markup, no wrapping, flushed so that a pipe sees progress.
            self.console.file.write(text + "\n")
            self.console.file.flush()

    def update(self, build: BuildAnswer, details: Mapping[str, TaskAnswer]) -> None:
        """Redraw the table with the latest statuses."""
        now = self._monotonic()
        for task in details.values():
            if task.status == "EXECUTING":
                self._started.setdefault(task.id, now)
            elif is_final(task.status) and task.id in self._started:
                self._ended.setdefault(task.id, now)
        elapsed = {
            task_id: self._ended.get(task_id, now) - start
            for task_id, start in self._started.items()
        }
        if self._live is not None:
            self._live.update(render_build(build, details, elapsed), refresh=True)

    # What ``follow_build`` shows of a task; a view for another format groups them differently.

    def task_log(self, task: TaskAnswer, command: str, text: str) -> None:
        """Show one line of a command's log."""
        self.line(log_line(task.name, command, text))

    def command_finished(
        self, task: TaskAnswer, command: CommandAnswer, exit_status: int | None = None
    ) -> None:
        """Show that a command of ``task`` reached a final status."""
        self.line(
            command_status_line(task.name, command, exit_status),
            STATUS_STYLES.get(command.status, ""),
        )

    def task_changed(self, task: TaskAnswer) -> None:
        """Show a task's new status (final or not)."""
        self.line(task_status_line(task), STATUS_STYLES.get(task.status, ""))

    def task_waiting(self, task: TaskAnswer, reason: str) -> None:
        """Show why a task still waits for a worker."""
        self.line(pending_line(task, reason), STATUS_STYLES["SCHEDULED"])


@dataclass(slots=True)
class _TaskFollow:
    """What has been shown of one task so far."""

    status: str = ""
    offsets: dict[str, int] = field(default_factory=dict)
    lines: dict[str, LogLines] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    last_lines: dict[str, str] = field(default_factory=dict)  # per command, the last shown
    done: bool = False
    waiting_since: float | None = None  # when it was last seen entering SCHEDULED
    checked_at: float = 0.0
    reason: str = ""  # the last pending reason shown


async def follow_build(
    client: BuildReader[BuildT, TaskT],
    build_id: str,
    view: BuildView,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    pending_after: float = PENDING_NOTICE_SECONDS,
    hopeless: Callable[[TaskT], bool] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> BuildT:
    """Show a build's progress and logs until it is final; return its final state.

    A task waiting for a worker for ``pending_after`` seconds gets its ``pendingReason``
    shown, once per new reason; ``TaskCannotRun`` is raised for a reason ``hopeless`` accepts.
    """
    follows: dict[str, _TaskFollow] = {}
    details: dict[str, TaskAnswer] = {}
    view.start()
    try:
        while True:
            build = await client.get_build(build_id)
            for summary in build.tasks:
                follow = follows.setdefault(summary.id, _TaskFollow())
                now = monotonic()
                if follow.done:
                    continue
                if (
                    summary.status in WAITING_STATUSES
                    and follow.status == summary.status
                    and not _recheck_due(follow, now, pending_after)
                ):
                    continue
                task = await client.get_task(summary.id)
                details[summary.id] = task
                follow.checked_at = now
                if task.status != "SCHEDULED":
                    follow.waiting_since = None
                elif follow.waiting_since is None or follow.status != "SCHEDULED":
                    follow.waiting_since = now
                await _show_task(client, task, follow, view)
                _show_pending(task, follow, view, now, pending_after, hopeless)
            view.update(build, details)
            # A final build may keep a manual task nobody triggered: it waits, not the view.
            if is_final(build.status) and all(
                f.done or f.status in WAITING_STATUSES for f in follows.values()
            ):
                view.line(build_line(build), STATUS_STYLES.get(build.status, ""))
                return build
            await asyncio.sleep(poll_seconds)
    finally:
        view.stop()


def _recheck_due(follow: _TaskFollow, now: float, pending_after: float) -> bool:
    """Whether a task still waiting for a worker is read again for its pending reason."""
    return (
        follow.waiting_since is not None
        and now - follow.waiting_since >= pending_after
        and now - follow.checked_at >= pending_after
    )


def _show_pending(
    task: TaskT,
    follow: _TaskFollow,
    view: BuildView,
    now: float,
    pending_after: float,
    hopeless: Callable[[TaskT], bool] | None,
) -> None:
    reason = task.pending_reason
    if follow.waiting_since is None or not reason or reason == follow.reason:
        return
    if now - follow.waiting_since < pending_after:
        return
    follow.reason = reason
    view.task_waiting(task, reason)
    if hopeless is not None and hopeless(task):
        raise TaskCannotRun(task, reason)


async def _show_task(
    client: BuildReader[BuildAnswer, TaskAnswer],
    task: TaskAnswer,
    follow: _TaskFollow,
    view: BuildView,
) -> None:
    final = is_final(task.status)
    if task.status != follow.status and not final:
        # The submission already listed the tasks' first (waiting) statuses.
        if follow.status or task.status not in WAITING_STATUSES:
            view.task_changed(task)
        follow.status = task.status
    for command in task.commands:
        if command.status in ("", "CREATED", "SKIPPED") and command.name not in follow.offsets:
            continue
        # Logs may still arrive after a command's final status: read until the task is final.
        offset = follow.offsets.get(command.name, 0)
        data = await client.task_log(task.id, command.name, offset)
        follow.offsets[command.name] = offset + len(data)
        lines = follow.lines.setdefault(command.name, LogLines())
        texts = lines.feed(data) + (lines.flush() if final else [])
        for text in texts:
            view.task_log(task, command.name, text)
        if texts:
            follow.last_lines[command.name] = texts[-1]
        if command.status in FINAL_COMMAND_STATUSES and command.name not in follow.finished:
            follow.finished.add(command.name)
            # The worker delivers a command's whole log before its final status, and ends a
            # failed script's log with its exit status (the wire has no field for it).
            last = follow.last_lines.get(command.name, "")
            view.command_finished(task, command, exit_status_in(last))
    if final:
        follow.status = task.status
        follow.done = True
        view.task_changed(task)
        tests = await task_tests(client, task.id)
        if tests is not None:
            style = STATUS_STYLES["FAILED" if tests.failed else "COMPLETED"]
            view.line(f"{task.name} (task {task.id}): tests: {tests.line()}", style)
