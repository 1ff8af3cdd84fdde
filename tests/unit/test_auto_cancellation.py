"""Which builds a newer build supersedes (``domain.auto_cancellation``), without I/O."""

from __future__ import annotations

from domain.auto_cancellation import superseded_tasks, supersedes
from domain.build import TaskSpec, TaskStatus
from domain.source import BuildSource
from domain.store import BuildRecord, TaskRecord

FEATURE = BuildSource(repository="octo/app", branch="feature")


def task(task_id: str, status: TaskStatus, *, cancel: bool = True) -> TaskRecord:
    """A stored task whose ``auto_cancellation`` is ``cancel``."""
    spec = TaskSpec(name=task_id, auto_cancellation=cancel)
    return TaskRecord(task_id, "b", task_id, status, spec, 1, 0.0, 0.0)


def build(build_id: str, source: BuildSource, *tasks: TaskRecord, at: float = 0.0) -> BuildRecord:
    """A stored build created at ``at``."""
    return BuildRecord(build_id, {}, at, tasks, source)


def test_the_same_repository_and_branch_is_superseded_whatever_the_case_of_the_name() -> None:
    assert supersedes(FEATURE, BuildSource(repository="Octo/App", branch="feature"))
    assert not supersedes(FEATURE, BuildSource(repository="octo/app", branch="main2"))
    assert not supersedes(FEATURE, BuildSource(repository="octo/fork", branch="feature"))


def test_tags_and_builds_without_a_repository_or_branch_are_never_superseded() -> None:
    tag = BuildSource(repository="octo/app", tag="v1")
    assert not supersedes(tag, tag)
    assert not supersedes(FEATURE, BuildSource(repository="octo/app", branch="feature", tag="v1"))
    assert not supersedes(BuildSource(branch="feature"), BuildSource(branch="feature"))
    assert not supersedes(BuildSource(repository="octo/app"), BuildSource(repository="octo/app"))


def test_a_pull_request_supersedes_only_builds_of_the_same_pull_request() -> None:
    pr7 = BuildSource(repository="octo/app", branch="topic", pr=7)
    assert supersedes(pr7, BuildSource(repository="octo/app", branch="topic", pr=7))
    assert not supersedes(pr7, BuildSource(repository="octo/app", branch="topic", pr=8))
    # The branch's own push build is not the pull request's.
    assert not supersedes(pr7, BuildSource(repository="octo/app", branch="topic"))


def test_only_unfinished_tasks_with_the_flag_of_earlier_builds_are_cancelled() -> None:
    older = build(
        "1",
        FEATURE,
        task("waiting", TaskStatus.SCHEDULED),
        task("running", TaskStatus.EXECUTING),
        task("done", TaskStatus.COMPLETED),
        task("kept", TaskStatus.SCHEDULED, cancel=False),
        at=1.0,
    )
    other = build(
        "2", BuildSource(repository="octo/app", branch="main"), task("m", TaskStatus.SCHEDULED)
    )
    later = build("4", FEATURE, task("late", TaskStatus.SCHEDULED), at=9.0)
    newer = build("3", FEATURE, task("new", TaskStatus.SCHEDULED), at=5.0)
    assert superseded_tasks(newer, [newer, older, other, later]) == ["waiting", "running"]
