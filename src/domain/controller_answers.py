"""What the controller's user API (``/api/v1``) answers, as the CLI's views read it.

Read-only shapes, not classes to build: the API client's answers (pydantic models that keep
every field the controller sent, for ``--json``) have these attributes, and a view that shows a
build, a task or its test results depends on nothing more. Tests give plain objects instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.source import BuildSource


class CommandAnswer(Protocol):
    """One command of a task with its latest reported status."""

    @property
    def name(self) -> str:
        """The command's name (``main`` of ``main_script``)."""
        ...

    @property
    def status(self) -> str:
        """``CREATED``, ``EXECUTING``, ``COMPLETED``, ``FAILED``, ... (empty: not reported)."""
        ...

    @property
    def duration_in_nanos(self) -> int:
        """How long it ran (0: not known)."""
        ...


class StatusAnswer(Protocol):
    """A task's id and status: a build's listing of it, or the answer to a cancel."""

    @property
    def id(self) -> str:
        """The task's id."""
        ...

    @property
    def status(self) -> str:
        """The task's status."""
        ...


class TaskSummaryAnswer(StatusAnswer, Protocol):
    """A task as listed in a build."""

    @property
    def name(self) -> str:
        """The task's name."""
        ...


class TaskAnswer(TaskSummaryAnswer, Protocol):
    """A task with its commands (``GET /api/v1/tasks/{id}``)."""

    @property
    def worker(self) -> str | None:
        """The worker running it, if any."""
        ...

    @property
    def failure_message(self) -> str | None:
        """Why it failed, if it did."""
        ...

    @property
    def skip_reason(self) -> str:
        """Why it was skipped (its ``skip`` or ``only_if``)."""
        ...

    @property
    def pending_reason(self) -> str:
        """Why it still waits for a worker, in words."""
        ...

    @property
    def commands(self) -> Sequence[CommandAnswer]:
        """Its commands, in order."""
        ...


class BuildAnswer(Protocol):
    """A build and its tasks (``GET /api/v1/builds/{id}``)."""

    @property
    def id(self) -> str:
        """The build's id."""
        ...

    @property
    def status(self) -> str:
        """The build's status."""
        ...

    @property
    def tasks(self) -> Sequence[TaskSummaryAnswer]:
        """Its tasks."""
        ...

    @property
    def source(self) -> BuildSource | None:
        """Where its code comes from."""
        ...


class TestsAnswer(Protocol):
    """A task's JUnit results."""

    @property
    def failed(self) -> int:
        """How many tests failed."""
        ...

    def line(self) -> str:
        """``12 passed, 1 failed (test_x), 0 skipped``, and any notice."""
        ...


class ArtifactsAnswer(Protocol):
    """A task's artifacts and test results (``GET /api/v1/tasks/{id}/artifacts``)."""

    @property
    def tests(self) -> TestsAnswer | None:
        """Its JUnit results, if it reported any."""
        ...


class SnapshotAnswer(Protocol):
    """A snapshot the controller stored (``POST /api/v1/snapshots``)."""

    @property
    def id(self) -> str:
        """The snapshot's id."""
        ...

    @property
    def sha256(self) -> str:
        """The SHA-256 (hex) of what the controller stored."""
        ...
