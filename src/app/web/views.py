"""What the pages show, computed from store records: durations, stages, command rows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from domain.build import TaskStatus
from domain.store import BuildRecord, TaskRecord

STATUS_CLASSES = {
    TaskStatus.CREATED: "waiting",
    TaskStatus.SCHEDULED: "waiting",
    TaskStatus.EXECUTING: "running",
    TaskStatus.COMPLETED: "passed",
    TaskStatus.FAILED: "failed",
    TaskStatus.ABORTED: "aborted",
    TaskStatus.SKIPPED: "skipped",
}
"""The CSS class (colour) of each status."""


def status_class(status: str) -> str:
    """Return the CSS class of a task, build or command status name."""
    try:
        return STATUS_CLASSES[TaskStatus(status)]
    except ValueError:
        return "passed" if status == "SUCCESS" else "failed" if status else "waiting"


def format_duration(seconds: float | None) -> str:
    """Return a duration as people read it (``1h 02m``, ``3m 04s``, ``5.2s``; ``""`` if none)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(seconds: float | None) -> str:
    """Return a UTC time stamp (``2026-12-07 12:30:05Z``; ``""`` if none)."""
    if seconds is None:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def task_seconds(task: TaskRecord, now: float) -> float | None:
    """Return how long a task ran (so far, if it still runs); ``None`` if it never started."""
    if task.started_at is None:
        return None
    end = task.stopped_at if task.stopped_at is not None else now
    return max(0.0, end - task.started_at)


@dataclass(frozen=True, slots=True)
class CommandRow:
    """One command of a task: its name, status and duration."""

    name: str
    status: str
    seconds: float | None


def command_rows(task: TaskRecord) -> list[CommandRow]:
    """Return a task's commands in configuration order, then any the worker added."""
    results = {result.name: result for result in task.command_results}
    names = list(dict.fromkeys([*(c.name for c in task.spec.commands), *results]))
    rows = []
    for name in names:
        result = results.get(name)
        if result is None:
            rows.append(CommandRow(name, "", None))
        else:
            rows.append(CommandRow(name, result.status.name, result.duration_in_nanos / 1e9))
    return rows


def stages(build: BuildRecord) -> list[list[TaskRecord]]:
    """Return a build's tasks grouped by dependency depth: stage 0 depends on nothing, stage n
    on tasks of earlier stages, at least one of stage n-1."""
    indices = build.spec.dependency_indices()
    depth: list[int] = [0] * len(build.tasks)
    # Configuration order need not be topological; relax until stable (a cycle is refused at
    # submission, so at most len(tasks) rounds).
    for _ in range(len(build.tasks)):
        changed = False
        for position, wanted in enumerate(indices):
            level = max((depth[i] + 1 for i in wanted if i != position), default=0)
            if level != depth[position]:
                depth[position], changed = level, True
        if not changed:
            break
    grouped: list[list[TaskRecord]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for position, task in enumerate(build.tasks):
        grouped[depth[position]].append(task)
    return grouped


def change_of(build: BuildRecord) -> str:
    """Return what a build builds, in one line: the branch, tag or pull request."""
    source = build.source
    if source.pr is not None:
        return f"PR #{source.pr}" + (f" → {source.base_branch}" if source.base_branch else "")
    if source.tag:
        return f"tag {source.tag}"
    return source.branch
