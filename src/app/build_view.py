"""Following a build: its tasks' progress as a rich live table on a terminal, plain lines
elsewhere, with every command's log streamed line by line.

``follow_build`` polls the controller's HTTP API (a ``BuildSource``) and feeds a
``BuildView``; the formatting functions are pure so that the output can be tested as text.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from adapters.controller_api import BuildInfo, CancelInfo, CommandInfo, TaskInfo

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


def submitted_lines(build: BuildInfo) -> list[str]:
    """The lines printed after a submission: the build id, then one line per task."""
    lines = [f"build {build.id}: {len(build.tasks)} task(s), {build.status}"]
    lines.extend(f"  task {task.id} {task.name}: {task.status}" for task in build.tasks)
    return lines


def task_status_line(task: TaskInfo) -> str:
    """The line printed when a task changes status."""
    line = f"{task.name} (task {task.id}): {task.status}"
    if task.status == "EXECUTING" and task.worker:
        line += f" on worker {task.worker}"
    reason = task.failure_message or (task.skip_reason if task.status == "SKIPPED" else "")
    if reason:
        line += f": {' '.join(reason.split())}"
    return line


def command_status_line(task_name: str, command: CommandInfo) -> str:
    """The line printed when a command of a task reaches a final status."""
    line = f"{task_name}:{command.name} {command.status}"
    if command.duration_in_nanos:
        line += f" in {format_duration(command.duration_in_nanos / 1e9)}"
    return line


def log_line(task_name: str, command: str, text: str) -> str:
    """One line of a command's log, prefixed with its task and command."""
    return f"{task_name}:{command} | {text}"


def build_line(build: BuildInfo) -> str:
    """The last line: the build's final status."""
    return f"build {build.id}: {build.status}"


def stopped_following_line(build_id: str) -> str:
    """What Ctrl-C on ``build submit --follow`` prints: the build goes on without us."""
    return (
        f"stopped following build {build_id}; it continues "
        f"(cancel: `cirrus build cancel {build_id}`)"
    )


def cancel_line(answer: CancelInfo) -> str:
    """The line for a cancel's answer: requested (running), done (was waiting) or too late."""
    if answer.status == "ABORTED":
        return f"task {answer.id}: cancelled (ABORTED)"
    if is_final(answer.status):
        return f"task {answer.id}: already {answer.status}, nothing to cancel"
    return (
        f"task {answer.id}: cancel requested (still {answer.status}; "
        "it turns ABORTED once its worker stops it)"
    )


def current_command(task: TaskInfo | None) -> str:
    """The command a task is running (or the last one that ran), for the live table."""
    if task is None:
        return ""
    executing = [c.name for c in task.commands if c.status == "EXECUTING"]
    if executing:
        return executing[0]
    ran = [c.name for c in task.commands if c.status not in ("", "CREATED", "SKIPPED")]
    return ran[-1] if ran else ""


def render_build(
    build: BuildInfo, details: Mapping[str, TaskInfo], elapsed: Mapping[str, float]
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


class BuildSource(Protocol):
    """What following a build reads (``ControllerApiClient`` in production)."""

    async def get_build(self, build_id: str) -> BuildInfo:
        """Return a build and its tasks."""
        ...

    async def get_task(self, task_id: str) -> TaskInfo:
        """Return a task with its commands."""
        ...

    async def task_log(self, task_id: str, command: str, offset: int = 0) -> bytes:
        """Return a command's log from ``offset``."""
        ...


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

    def update(self, build: BuildInfo, details: Mapping[str, TaskInfo]) -> None:
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


@dataclass(slots=True)
class _TaskFollow:
    """What has been shown of one task so far."""

    status: str = ""
    offsets: dict[str, int] = field(default_factory=dict)
    lines: dict[str, LogLines] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    done: bool = False


async def follow_build(
    client: BuildSource,
    build_id: str,
    view: BuildView,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> BuildInfo:
    """Show a build's progress and logs until it is final; return its final state."""
    follows: dict[str, _TaskFollow] = {}
    details: dict[str, TaskInfo] = {}
    view.start()
    try:
        while True:
            build = await client.get_build(build_id)
            for summary in build.tasks:
                follow = follows.setdefault(summary.id, _TaskFollow())
                if follow.done:
                    continue
                if summary.status in WAITING_STATUSES and follow.status == summary.status:
                    continue
                task = await client.get_task(summary.id)
                details[summary.id] = task
                await _show_task(client, task, follow, view)
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


async def _show_task(
    client: BuildSource, task: TaskInfo, follow: _TaskFollow, view: BuildView
) -> None:
    final = is_final(task.status)
    if task.status != follow.status and not final:
        # The submission already listed the tasks' first (waiting) statuses.
        if follow.status or task.status not in WAITING_STATUSES:
            view.line(task_status_line(task), STATUS_STYLES.get(task.status, ""))
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
            view.line(log_line(task.name, command.name, text))
        if command.status in FINAL_COMMAND_STATUSES and command.name not in follow.finished:
            follow.finished.add(command.name)
            view.line(
                command_status_line(task.name, command), STATUS_STYLES.get(command.status, "")
            )
    if final:
        follow.status = task.status
        follow.done = True
        view.line(task_status_line(task), STATUS_STYLES.get(task.status, ""))
