"""``auto_cancellation``: a newer build of a branch cancels the unfinished tasks of older ones.

As on Cirrus CI, the flag belongs to the task that is cancelled: a task whose
``auto_cancellation`` was true when its build was created (by default on every branch but the
default one) is aborted once a newer build of the same repository and branch, or of the same
pull request, arrives. Tag builds and builds without a repository and branch are never
superseded: nothing newer can stand for them.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.source import BuildSource
from domain.store import BuildRecord


def supersedes(newer: BuildSource, older: BuildSource) -> bool:
    """Return whether a build of ``newer`` makes a build of ``older`` outdated."""
    if not newer.repository or newer.tag or older.tag:
        return False
    if newer.repository.casefold() != older.repository.casefold():
        return False
    if newer.pr is not None or older.pr is not None:
        return newer.pr == older.pr
    return bool(newer.branch) and newer.branch == older.branch


def superseded_tasks(newer: BuildRecord, older: Iterable[BuildRecord]) -> list[str]:
    """Return the ids of the tasks ``newer`` cancels among the builds ``older``: unfinished
    tasks with ``auto_cancellation`` of earlier builds that ``newer`` supersedes."""
    cancelled: list[str] = []
    for build in older:
        if build.id == newer.id or build.created_at > newer.created_at:
            continue
        if not supersedes(newer.source, build.source):
            continue
        cancelled.extend(
            task.id
            for task in build.tasks
            if task.spec.auto_cancellation and not task.status.is_final
        )
    return cancelled
