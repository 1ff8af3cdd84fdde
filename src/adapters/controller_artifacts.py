"""Answers of ``GET /api/v1/tasks/{id}/artifacts`` as the API client parses them.

``ControllerApiClient.task_artifacts`` returns a ``TaskArtifacts``; ``download_artifact`` streams
one file to disk (to a ``.partial`` file renamed once complete).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    """Base of these answers, configured as ``controller_api``'s (which imports this module)."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """Return the answer as JSON-ready data with the controller's field names."""
        return self.model_dump(mode="json", by_alias=True)


class ArtifactEntry(ApiModel):
    """One committed artifact file."""

    name: str
    path: str
    size: int = 0
    sha256: str = ""
    type: str = ""
    format: str = ""


class FailedTest(ApiModel):
    """A failing test of a task's JUnit results."""

    name: str
    message: str = ""


class TestsSummary(ApiModel):
    """A task's JUnit results."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: tuple[FailedTest, ...] = ()
    notices: tuple[str, ...] = ()

    def line(self) -> str:
        """``12 passed, 1 failed (test_x), 0 skipped``, and any notice."""
        failed = f"{self.failed} failed"
        if self.failures:
            names = ", ".join(f.name for f in self.failures[:3])
            more = ", ..." if self.failed > min(3, len(self.failures)) else ""
            failed += f" ({names}{more})"
        text = f"{self.passed} passed, {failed}, {self.skipped} skipped"
        return "; ".join([text, *self.notices])


class TaskArtifacts(ApiModel):
    """``GET /api/v1/tasks/{id}/artifacts``."""

    artifacts: tuple[ArtifactEntry, ...] = ()
    tests: TestsSummary | None = Field(default=None)
