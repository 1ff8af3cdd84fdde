"""Which commit statuses a build shows on its forge: one per task, one for the whole build.

Pure rules over a stored build: the forge's state word for each status, its description and
the web page it links to. ``changed_reports`` compares them with what was enqueued before, so
that a status is posted once per change and never again afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.build import TaskStatus, counted_status
from domain.forge_store import StatusPost
from domain.store import BuildRecord, TaskRecord

BUILD_CONTEXT = "cirrus-ci"
"""The context of the build's overall status; a task's is ``cirrus-ci/<task name>``."""

_STATES = {
    TaskStatus.CREATED: "pending",
    TaskStatus.SCHEDULED: "pending",
    TaskStatus.EXECUTING: "pending",
    TaskStatus.COMPLETED: "success",
    TaskStatus.FAILED: "failure",
    TaskStatus.ABORTED: "error",
    TaskStatus.SKIPPED: "error",
}

_WORDS = {
    TaskStatus.CREATED: "waiting",
    TaskStatus.SCHEDULED: "queued",
    TaskStatus.EXECUTING: "running",
    TaskStatus.COMPLETED: "succeeded",
    TaskStatus.FAILED: "failed",
    TaskStatus.ABORTED: "cancelled",
    TaskStatus.SKIPPED: "skipped",
}


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build shows now: context to state, the posts for the changed ones, and whether
    the build is final (nothing will change any more)."""

    reported: dict[str, str]
    posts: tuple[StatusPost, ...]
    finished: bool


def task_context(task: TaskRecord, duplicates: bool) -> str:
    """Return a task's status context (with its id when another task has the same name)."""
    suffix = f" #{task.id}" if duplicates else ""
    return f"{BUILD_CONTEXT}/{task.name}{suffix}"


def changed_reports(
    build: BuildRecord,
    repository: str,
    commit: str,
    reported: Mapping[str, str],
    public_url: str,
    waiting: str | None = None,
) -> BuildReport:
    """Return the statuses of ``build`` that differ from ``reported``, build status last.

    ``waiting`` is why the build waits for an approval (its statuses say so); ``public_url``
    the controller's web root the links point into.
    """
    base = public_url.rstrip("/")
    names = [task.name for task in build.tasks]
    current: dict[str, str] = {}
    posts: list[StatusPost] = []

    def add(context: str, state: str, description: str, url: str) -> None:
        current[context] = state + ":" + description
        if reported.get(context) != current[context]:
            posts.append(StatusPost(repository, commit, context, state, description[:140], url))

    for task in build.tasks:
        status = counted_status(task.status, task.spec)
        words = waiting if waiting and not status.is_final else _WORDS[task.status]
        add(
            task_context(task, names.count(task.name) > 1),
            _STATES[status],
            f"{task.name}: {words}",
            f"{base}/tasks/{task.id}",
        )
    status = build.status
    finished = status.is_final and not waiting
    words = waiting if waiting and not status.is_final else _WORDS[status]
    add(BUILD_CONTEXT, _STATES[status], f"build {words}", f"{base}/builds/{build.id}")
    return BuildReport(current, tuple(posts), finished)
