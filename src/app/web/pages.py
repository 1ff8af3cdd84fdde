"""The pages of the web interface: builds, build, task, workers, queue; its forms, streams,
raw logs and badges. Every page reads a bounded amount: a page of builds, one build, one
window of each log."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from app.controller.api import MANUAL_TRIGGER_REASON
from app.controller.reruns import NoSuchRecordError, rerun_build, rerun_task
from app.web.artifact_pages import build_tests, task_artifacts
from app.web.badges import badge_svg
from app.web.log_view import ansi_to_html, log_window
from app.web.site import Visitor, WebInterface
from app.web.views import command_rows, stages, task_seconds
from domain.build import TaskStatus
from domain.rerun import RERUN_FAILED_STATUSES, RerunError, attempts_of
from domain.scheduling import WorkerView, pending_reason
from domain.store import TaskRecord
from domain.wire_protocol import IsolationWriter
from domain.worker_capacity import queued_view

BUILDS_PER_PAGE = 25
NOBODY = "\x00"
"""What a session of an older cookie (no token name) filters "mine" by: matches no build."""
QUEUE_SHOWN = 200
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def page_routes(web: WebInterface) -> list[Route]:
    """Return the routes of the pages, forms, streams and badges."""
    pages = Pages(web)
    return [
        Route("/", pages.builds, methods=["GET"]),
        Route("/builds/{build_id}", pages.build, methods=["GET"]),
        Route("/builds/{build_id}/cancel", pages.cancel_build, methods=["POST"]),
        Route("/builds/{build_id}/rerun", pages.rerun_build, methods=["POST"]),
        Route("/tasks/{task_id}", pages.task, methods=["GET"]),
        Route("/tasks/{task_id}/raw", pages.raw_log, methods=["GET"]),
        Route("/tasks/{task_id}/cancel", pages.cancel, methods=["POST"]),
        Route("/tasks/{task_id}/trigger", pages.trigger, methods=["POST"]),
        Route("/tasks/{task_id}/rerun", pages.rerun, methods=["POST"]),
        Route("/workers", pages.workers, methods=["GET"]),
        Route("/workers/pause", pages.pause, methods=["POST"]),
        Route("/queue", pages.queue, methods=["GET"]),
        Route("/live/builds", pages.live_builds, methods=["GET"]),
        Route("/live/builds/{build_id}", pages.live_build, methods=["GET"]),
        Route("/live/tasks/{task_id}", pages.live_task, methods=["GET"]),
        Route("/badge/{owner}/{repo}/{branch:path}", pages.badge, methods=["GET"]),
    ]


class Pages:
    """Handlers of the page routes."""

    def __init__(self, web: WebInterface) -> None:
        self.web = web
        self.store = web.store

    async def builds(self, request: Request) -> Response:
        """``GET /``: builds, newest first, filtered by repository, branch and status."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        query = request.query_params
        repository, branch = query.get("repository", ""), query.get("branch", "")
        status_name = query.get("status", "")
        status = TaskStatus(status_name) if status_name in TaskStatus.__members__ else None
        before = query.get("before", "")
        # "mine": the builds the logged-in token submitted (a visitor has none).
        mine = query.get("mine") == "1" and visitor.may.logged_in
        builds = await self.store.list_builds(
            repository,
            branch,
            status,
            BUILDS_PER_PAGE + 1,
            before if before.isdigit() else "",
            submitted_by=(visitor.session.user or NOBODY) if mine else "",
        )
        more = len(builds) > BUILDS_PER_PAGE
        builds = builds[:BUILDS_PER_PAGE]
        filters = {
            "repository": repository,
            "branch": branch,
            "status": status_name,
            "mine": "1" if mine else "",
        }
        running = [build.id for build in builds if not build.status.is_final]
        return self.web.render(
            request,
            visitor,
            "builds.html",
            builds=builds,
            filters=filters,
            statuses=list(TaskStatus),
            older=builds[-1].id if more and builds else "",
            now=time.time(),
            live="/live/builds?" + urllib.parse.urlencode({"id": running}, doseq=True)
            if running
            else "",
        )

    async def build(self, request: Request) -> Response:
        """``GET /builds/{id}``: source, tasks by stage, pending reasons."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        build = await self.store.get_build(request.path_params["build_id"])
        if build is None:
            return self.web.not_found(request, visitor, "There is no such build.")
        reasons = await self._pending_reasons(list(build.tasks))
        now = time.time()
        seconds = {task.id: task_seconds(task, now) for task in build.tasks}
        return self.web.render(
            request,
            visitor,
            "build.html",
            build=build,
            stages=stages(build),
            reasons=reasons,
            seconds=seconds,
            names={task.id: task.name for task in build.tasks},
            dependencies=_dependency_ids(build.tasks, build.spec.dependency_indices()),
            failed_tasks=[t for t in build.tasks if t.status in RERUN_FAILED_STATUSES],
            tests=await build_tests(self.web, build.tasks),
            approval=await self.web.approval_wait(build.id) if self.web.approval_wait else None,
        )

    async def _pending_reasons(self, tasks: list[TaskRecord]) -> dict[str, str]:
        """Return why each waiting task waits (the workers read once for all of them)."""
        reasons: dict[str, str] = {}
        views: list[WorkerView] | None = None
        for task in tasks:
            if task.status is TaskStatus.SCHEDULED and task.worker is None:
                if views is None:
                    views = await self.web.scheduler.worker_views()
                reasons[task.id] = pending_reason(queued_view(task), views)
            elif task.waiting_for_trigger:
                reasons[task.id] = MANUAL_TRIGGER_REASON
            elif task.status is TaskStatus.CREATED:
                reasons[task.id] = f"waiting for {', '.join(task.spec.depends_on)} to complete"
        return reasons

    async def task(self, request: Request) -> Response:
        """``GET /tasks/{id}``: commands and one window of each log (the tail by default)."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        task = await self.store.get_task(request.path_params["task_id"])
        if task is None:
            return self.web.not_found(request, visitor, "There is no such task.")
        paged, at = request.query_params.get("log"), request.query_params.get("at", "")
        logs: list[dict[str, Any]] = []
        for row in command_rows(task):
            size = await self.store.log_size(task.id, row.name)
            offset = int(at) if row.name == paged and at.isdigit() else None
            window = log_window(size, offset)
            data = await self.store.read_log(
                task.id, row.name, window.start, window.end - window.start
            )
            logs.append({"row": row, "window": window, "html": ansi_to_html(data)})
        reasons = await self._pending_reasons([task])
        attempts = attempts_of(await self.store.list_build_tasks(task.build_id), task.id)
        return self.web.render(
            request,
            visitor,
            "task.html",
            task=task,
            attempts=attempts,
            logs=logs,
            reason=reasons.get(task.id, ""),
            seconds=task_seconds(task, time.time()),
            isolation=_isolation_text(task, self.web.isolation_json),
            artifacts=await task_artifacts(self.web, task.id),
        )

    async def raw_log(self, request: Request) -> Response:
        """``GET /tasks/{id}/raw?command=NAME``: a command's whole log, streamed."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        task_id, command = request.path_params["task_id"], request.query_params.get("command", "")
        task = await self.store.get_task(task_id)
        if task is None or command not in {row.name for row in command_rows(task)}:
            return self.web.not_found(request, visitor, "There is no such log.")
        filename = "".join(c if c.isalnum() or c in "-_" else "_" for c in command)
        return StreamingResponse(
            self.store.iter_log(task_id, command),
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="task-{task_id}-{filename}.log"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def cancel(self, request: Request) -> Response:
        """``POST /tasks/{id}/cancel`` (operators, CSRF-checked)."""
        visitor, form = await self.web.checked_form(request)
        if form is None:
            return self.web.refused(request, visitor)
        task = await self.web.scheduler.cancel(request.path_params["task_id"])
        if task is None:
            return self.web.not_found(request, visitor, "There is no such task.")
        return RedirectResponse(f"/tasks/{task.id}", 303)

    async def cancel_build(self, request: Request) -> Response:
        """``POST /builds/{id}/cancel``: cancel every task not final yet (operators, CSRF)."""
        visitor, form = await self.web.checked_form(request)
        if form is None:
            return self.web.refused(request, visitor)
        build = await self.store.get_build(request.path_params["build_id"])
        if build is None:
            return self.web.not_found(request, visitor, "There is no such build.")
        for task in build.tasks:
            if not task.status.is_final:
                await self.web.scheduler.cancel(task.id)
        return RedirectResponse(f"/builds/{build.id}", 303)

    async def trigger(self, request: Request) -> Response:
        """``POST /tasks/{id}/trigger`` of a manual task (operators, CSRF-checked)."""
        visitor, form = await self.web.checked_form(request)
        if form is None:
            return self.web.refused(request, visitor)
        task = await self.store.get_task(request.path_params["task_id"])
        if task is None:
            return self.web.not_found(request, visitor, "There is no such task.")
        if task.spec.manual:
            await self.web.scheduler.trigger(task.id)
        return RedirectResponse(f"/tasks/{task.id}", 303)

    async def rerun(self, request: Request) -> Response:
        """``POST /tasks/{id}/rerun`` of a final task (operators, CSRF-checked): to the new
        attempt's page."""
        visitor, form = await self.web.checked_form(request)
        if form is None:
            return self.web.refused(request, visitor)
        try:
            created = await rerun_task(
                self.store, self.web.scheduler, request.path_params["task_id"]
            )
        except NoSuchRecordError:
            return self.web.not_found(request, visitor, "There is no such task.")
        except RerunError as error:
            return self._conflict(request, visitor, str(error))
        return RedirectResponse(f"/tasks/{created[0].id}", 303)

    async def rerun_build(self, request: Request) -> Response:
        """``POST /builds/{id}/rerun`` (``failed=true``: only failed and aborted tasks), by
        operators, CSRF-checked."""
        visitor, form = await self.web.checked_form(request)
        if form is None:
            return self.web.refused(request, visitor)
        build_id = request.path_params["build_id"]
        try:
            await rerun_build(
                self.store, self.web.scheduler, build_id, failed_only=form.get("failed") == "true"
            )
        except NoSuchRecordError:
            return self.web.not_found(request, visitor, "There is no such build.")
        except RerunError as error:
            return self._conflict(request, visitor, str(error))
        return RedirectResponse(f"/builds/{build_id}", 303)

    def _conflict(self, request: Request, visitor: Visitor, message: str) -> Response:
        return self.web.render(
            request, visitor, "error.html", 409, title="Not re-run", message=message
        )

    async def workers(self, request: Request) -> Response:
        """``GET /workers``: labels, resources, running tasks, online/paused, last seen."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        records = {w.name: w for w in await self.store.list_workers()}
        views = await self.web.scheduler.worker_views()
        rows = [(view, records[view.name]) for view in views if view.name in records]
        return self.web.render(request, visitor, "workers.html", rows=rows)

    async def pause(self, request: Request) -> Response:
        """``POST /workers/pause`` with ``worker`` and ``paused`` (operators, CSRF-checked)."""
        visitor, form = await self.web.checked_form(request)
        if form is None:
            return self.web.refused(request, visitor)
        worker = await self.web.scheduler.set_disabled(
            form.get("worker", ""), form.get("paused") == "true"
        )
        if worker is None:
            return self.web.not_found(request, visitor, "There is no such worker.")
        return RedirectResponse("/workers", 303)

    async def queue(self, request: Request) -> Response:
        """``GET /queue``: queued tasks, oldest first, with why each still waits."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return self.web.to_login(request)
        queued = await self.store.queued_tasks(QUEUE_SHOWN)
        summary = await self.store.queue_summary()
        reasons = await self._pending_reasons(queued)
        return self.web.render(
            request, visitor, "queue.html", queued=queued, reasons=reasons, total=summary.length
        )

    async def live_build(self, request: Request) -> Response:
        """``GET /live/builds/{id}``: Server-Sent Events of the build's status changes."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return Response("log in first", 401, media_type="text/plain")
        events = self.web.live.build_events(request.path_params["build_id"])
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    async def live_builds(self, request: Request) -> Response:
        """``GET /live/builds?id=...``: Server-Sent Events of the listed builds' statuses."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return Response("log in first", 401, media_type="text/plain")
        ids = [i for i in request.query_params.getlist("id") if i.isdigit()][:BUILDS_PER_PAGE]
        events = self.web.live.list_events(ids)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    async def live_task(self, request: Request) -> Response:
        """``GET /live/tasks/{id}?log=NAME&at=OFFSET...``: status changes and the log bytes
        appended after each named command's offset."""
        visitor = await self.web.visitor(request)
        if not visitor.may.view:
            return Response("log in first", 401, media_type="text/plain")
        names, ats = request.query_params.getlist("log"), request.query_params.getlist("at")
        offsets = {name: int(at) for name, at in zip(names, ats, strict=False) if at.isdigit()}
        events = self.web.live.task_events(request.path_params["task_id"], offsets)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    async def badge(self, request: Request) -> Response:
        """``GET /badge/{owner}/{repo}/{branch}.svg``: the latest build's status, for READMEs.

        Served without login (READMEs embed it through image proxies); it tells the status
        only.
        """
        branch: str = request.path_params["branch"]
        if not branch.endswith(".svg"):
            return Response("not found", 404, media_type="text/plain")
        repository = f"{request.path_params['owner']}/{request.path_params['repo']}"
        builds = await self.store.list_builds(repository, branch.removesuffix(".svg"), None, 1)
        status = builds[0].status.value if builds else None
        return Response(
            badge_svg("build", status),
            media_type="image/svg+xml",
            headers={"Cache-Control": "no-cache, no-store, max-age=0", "Expires": "0"},
        )


def _dependency_ids(
    tasks: tuple[TaskRecord, ...], indices: tuple[tuple[int, ...], ...]
) -> dict[str, list[str]]:
    """Return the ids of the tasks each task waits for."""
    return {
        task.id: [tasks[i].id for i in wanted] for task, wanted in zip(tasks, indices, strict=True)
    }


def _isolation_text(task: TaskRecord, isolation_json: IsolationWriter) -> str:
    """Return a task's isolation as one line (its kind and settings)."""
    encoded = isolation_json(task.spec.isolation)
    if not encoded:
        return "the worker's default"
    kind, settings = next(iter(encoded.items()))
    return f"{kind} {json.dumps(settings, sort_keys=True)}" if settings else kind
