"""``/api/v1/tasks/{id}/artifacts``: a task's committed artifacts, its test results, the bytes.

* ``GET /api/v1/tasks/{id}/artifacts`` answers ``{"artifacts": [{"name", "path", "size",
  "sha256", "type", "format"}], "tests": {"passed", "failed", "skipped", "failures": [{"name",
  "message"}], "notices": [...]}}``, ``tests`` null when the task has no JUnit artifact.
* ``GET /api/v1/tasks/{id}/artifacts/{name}/{path}`` streams one file from the blob store.

Both want a token with the ``viewer`` role at least (the admin token, or a user token), like
the rest of the API (``api_guard``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.controller.api_guard import guarded
from app.controller.auth import ApiAccess
from domain.artifacts import ArtifactRecord, ArtifactStore, TestResults
from domain.blobs import BlobStore
from domain.store import BuildStore
from domain.tokens import Role

Endpoint = Callable[[Request], Awaitable[Response]]


class _AnyPath(Convertor[str]):
    """Starlette's ``path`` convertor, but a file name may hold any character (a newline too):
    such a path reaches the endpoint (a JSON 404), never the router's plain-text one."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("artifactpath", _AnyPath())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def artifact_json(record: ArtifactRecord) -> dict[str, Any]:
    """One committed file as the API shows it."""
    return {
        "name": record.name,
        "path": record.path,
        "size": record.size,
        "sha256": record.sha256,
        "type": record.type,
        "format": record.format,
    }


def tests_json(tests: TestResults | None) -> dict[str, Any] | None:
    """A task's test results as the API shows them (None: no JUnit artifact)."""
    if tests is None:
        return None
    return {
        "passed": tests.passed,
        "failed": tests.failed,
        "skipped": tests.skipped,
        "failures": [{"name": f.name, "message": f.message} for f in tests.failures],
        "notices": list(tests.notices),
    }


class ArtifactsApi:
    """The two artifact endpoints; ``routes()`` mounts them."""

    def __init__(
        self,
        store: BuildStore,
        artifacts: ArtifactStore,
        blobs: BlobStore,
        *,
        access: ApiAccess,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._blobs = blobs
        self._access = access

    def routes(self) -> list[Route]:
        """Return the routes."""
        return [
            Route(
                "/api/v1/tasks/{task_id}/artifacts",
                self._guarded(self.list_artifacts),
                methods=["GET"],
            ),
            Route(
                "/api/v1/tasks/{task_id}/artifacts/{path:artifactpath}",
                self._guarded(self.download),
                methods=["GET"],
            ),
        ]

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        return guarded(self._access, Role.VIEWER, endpoint)

    async def list_artifacts(self, request: Request) -> Response:
        """``GET /api/v1/tasks/{id}/artifacts``."""
        task_id = request.path_params["task_id"]
        if await self._store.get_task(task_id) is None:
            return _error(404, "no such task")
        records = await self._artifacts.list_artifacts(task_id)
        tests = await self._artifacts.test_results(task_id)
        return JSONResponse(
            {"artifacts": [artifact_json(r) for r in records], "tests": tests_json(tests)}
        )

    async def download(self, request: Request) -> Response:
        """``GET /api/v1/tasks/{id}/artifacts/{name}/{path}``: the file's bytes, streamed."""
        task_id = request.path_params["task_id"]
        name, _, path = str(request.path_params["path"]).partition("/")
        record = await self._artifacts.get_artifact(task_id, name, path) if path else None
        if record is None:
            return _error(404, f"task {task_id} has no artifact file {name}/{path}")
        info = await self._blobs.stat(record.blob_key)
        if info is None:
            return _error(410, f"the blob of {name}/{path} is gone (deleted by retention?)")
        return StreamingResponse(
            # A blob found corrupted at its end aborts the response: a short body, not a wrong one.
            self._blobs.get(record.blob_key),
            media_type=record.type or "application/octet-stream",
            headers={"content-length": str(info.size), "x-cirrus-sha256": info.sha256},
        )
