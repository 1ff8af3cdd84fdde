"""The calls the CLI makes to the controller's user API (``/api/v1``), as ports, and their
errors.

``adapters.controller_api.ControllerApiClient`` makes every call; it raises these errors (and
re-exports them, as most commands import them from there). Every failure is one of them, so
that a command maps it to one line and an exit code::

    ControllerApiError              root: the call did not give the expected answer
    ├── ControllerUnreachable       no answer: connection refused, DNS, timeout
    ├── ControllerRefused           a 4xx answer; ``status`` and the controller's ``error`` text
    │   └── ResourceNotFound        404: no such build, task or log
    ├── ControllerServerError       a 5xx answer
    └── UnexpectedAnswer            an answer that is not the documented JSON
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

from domain.controller_answers import ArtifactsAnswer, BuildAnswer, SnapshotAnswer, TaskAnswer
from domain.errors import CirrusError

BuildT_co = TypeVar("BuildT_co", bound=BuildAnswer, covariant=True)
TaskT_co = TypeVar("TaskT_co", bound=TaskAnswer, covariant=True)


class ControllerApiError(CirrusError):
    """Root of the errors of the controller's HTTP API; ``str()`` is one line for a user."""


class ControllerUnreachable(ControllerApiError):
    """The controller did not answer (connection refused, unknown host, timeout)."""


class ControllerRefused(ControllerApiError):
    """The controller answered with a 4xx status; ``message`` is its ``error`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ResourceNotFound(ControllerRefused):
    """404: the build, task, command log or route does not exist."""


class ControllerServerError(ControllerApiError):
    """The controller answered with a 5xx status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UnexpectedAnswer(ControllerApiError):
    """The controller's answer is not the documented JSON."""


class BuildReader(Protocol[BuildT_co, TaskT_co]):
    """What following a build reads; generic so that the caller gets back the client's own
    answers (with their ``--json`` document)."""

    async def get_build(self, build_id: str) -> BuildT_co:
        """Return a build and its tasks."""
        ...

    async def get_task(self, task_id: str) -> TaskT_co:
        """Return a task with its commands."""
        ...

    async def task_log(self, task_id: str, command: str, offset: int = 0) -> bytes:
        """Return a command's log from ``offset``."""
        ...


@runtime_checkable
class TestResultsSource(Protocol):
    """A client that reads tasks' JUnit results (a fake controller of a test may not)."""

    async def task_artifacts(self, task_id: str) -> ArtifactsAnswer:
        """Return a task's artifacts and test results."""
        ...


class SnapshotUploads(Protocol):
    """Where ``build submit`` uploads the snapshot of a project."""

    @property
    def base_url(self) -> str:
        """The controller's URL, for messages."""
        ...

    async def upload_snapshot(self, path: str) -> SnapshotAnswer:
        """Upload the ``.tar.gz`` at ``path`` (a file of this machine); return what was
        stored."""
        ...
