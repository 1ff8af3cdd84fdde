"""A task's artifacts and test results in the web interface: what the task and build pages show,
and ``GET /tasks/{id}/artifacts/{name}/{path}``, the download of one file.

The same records and blobs as ``/api/v1/tasks/{id}/artifacts`` (``artifacts_api``), for a
logged-in visitor or anyone in public mode. A download is an attachment, never rendered by the
browser in the controller's origin: an artifact is whatever a task wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

import app.controller.artifacts_api  # noqa: F401  # registers the "artifactpath" convertor
from app.web.site import WebInterface
from domain.artifacts import ArtifactRecord, TestResults
from domain.store import TaskRecord

DOWNLOAD_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@dataclass(frozen=True, slots=True)
class TaskArtifacts:
    """What the task page shows of a task's artifacts: the files and the test results."""

    files: tuple[ArtifactRecord, ...] = ()
    tests: TestResults | None = None


def artifact_routes(web: WebInterface) -> list[Route]:
    """Return the route of the artifact downloads."""
    return [
        Route(
            "/tasks/{task_id}/artifacts/{path:artifactpath}",
            ArtifactDownloads(web).download,
            methods=["GET"],
        )
    ]


async def task_artifacts(web: WebInterface, task_id: str) -> TaskArtifacts:
    """Return a task's committed artifact files and test results."""
    if web.artifacts is None:
        return TaskArtifacts()
    files = tuple(await web.artifacts.list_artifacts(task_id))
    return TaskArtifacts(files, await web.artifacts.test_results(task_id))


async def build_tests(web: WebInterface, tasks: tuple[TaskRecord, ...]) -> dict[str, str]:
    """Return the one-line test summary of each task of a build that has test results (tasks
    that never started have none, and are not asked for)."""
    if web.artifacts is None:
        return {}
    summaries: dict[str, str] = {}
    for task in tasks:
        if task.started_at is None:
            continue
        tests = await web.artifacts.test_results(task.id)
        if tests is not None:
            summaries[task.id] = tests.summary()
    return summaries


def attachment_name(path: str) -> str:
    """Return a download's file name: the path's last part, in safe characters."""
    last = path.rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in last) or "artifact"


class ArtifactDownloads:
    """The download handler."""

    def __init__(self, web: WebInterface) -> None:
        self.web = web

    async def download(self, request: Request) -> Response:
        """``GET /tasks/{id}/artifacts/{name}/{path}``: one artifact file's bytes, streamed."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        task_id = request.path_params["task_id"]
        name, _, path = str(request.path_params["path"]).partition("/")
        artifacts, blobs = self.web.artifacts, self.web.blobs
        record = None
        if artifacts is not None and path:
            record = await artifacts.get_artifact(task_id, name, path)
        if record is None or blobs is None:
            return self.web.not_found(request, visitor, "There is no such artifact file.")
        info = await blobs.stat(record.blob_key)
        if info is None:
            return self.web.render(
                request,
                visitor,
                "error.html",
                410,
                title="Gone",
                message="This artifact file was deleted by retention.",
            )
        headers = {
            **DOWNLOAD_HEADERS,
            "Content-Length": str(info.size),
            "Content-Disposition": f'attachment; filename="{attachment_name(path)}"',
            "X-Cirrus-Sha256": info.sha256,
        }
        return StreamingResponse(
            blobs.get(record.blob_key), media_type="application/octet-stream", headers=headers
        )
