"""``/api/v1/snapshots``: upload a working tree's ``.tar.gz``, download it again.

``POST`` (admin token) streams the body into a spooled temporary file (memory up to
``SPOOL_MEMORY_BYTES``, then disk), refusing it with a 413 as soon as it passes the
``snapshot-max-bytes`` limit; checks that it is a gzip'd tar whose members all stay inside the
tree; then stores it in the database in chunks and answers ``201 {"id", "sha256", "size"}``.

``GET`` answers the bytes, streamed chunk by chunk from the database, to the admin token or to
the worker of a running task whose build's source is that snapshot (the task-scoped headers of
the Twirp calls, checked by ``WorkerAuthenticator.task``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.controller.api_guard import refusal
from app.controller.auth import (
    REGISTRATION_TOKEN_HEADER,
    ApiAccess,
    AuthError,
    TokenHash,
    WorkerAuthenticator,
)
from domain.archive_check import ArchiveCheck, ArchiveError
from domain.snapshots import SNAPSHOT_CHUNK_LIMIT
from domain.store import ControllerStore, StoreError
from domain.tokens import Role

DEFAULT_SNAPSHOT_MAX_BYTES = 256 * 1024 * 1024
"""The largest snapshot upload unless the controller's ``snapshot-max-bytes`` says otherwise."""
SNAPSHOT_MAX_BYTES_KEY = "snapshot-max-bytes"
SPOOL_MEMORY_BYTES = 1024 * 1024
"""Bytes of an upload kept in memory before it goes to a temporary file."""
GZIP_MEDIA_TYPE = "application/gzip"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _file_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, SNAPSHOT_CHUNK_LIMIT):
        yield chunk


class SnapshotsApi:
    """The two snapshot endpoints; ``routes()`` mounts them."""

    def __init__(
        self,
        store: ControllerStore,
        *,
        admin_token: TokenHash,
        workers: WorkerAuthenticator,
        check_archive: ArchiveCheck,
        max_bytes: int = DEFAULT_SNAPSHOT_MAX_BYTES,
        access: ApiAccess | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._store = store
        # Operators (who submit builds) upload and read; workers read their build's snapshot.
        self._access = access or ApiAccess(admin_token)
        self._workers = workers
        # Whether an upload is a gzip'd tar whose members stay inside its tree.
        self._check_archive = check_archive
        self._max_bytes = max_bytes

    def routes(self) -> list[Route]:
        """Return the routes of ``/api/v1/snapshots``."""
        return [
            Route("/api/v1/snapshots", self.upload, methods=["POST"]),
            Route("/api/v1/snapshots/{snapshot_id}", self.download, methods=["GET"]),
        ]

    def _too_large(self) -> JSONResponse:
        return _error(
            413,
            f"the snapshot is larger than the limit of {self._max_bytes} bytes "
            f"({SNAPSHOT_MAX_BYTES_KEY})",
        )

    async def upload(self, request: Request) -> Response:
        """``POST /api/v1/snapshots``: store a ``.tar.gz``; ``201 {"id", "sha256", "size"}``."""
        try:
            refused = await refusal(self._access, request, Role.OPERATOR)
        except StoreError:
            return _error(503, "the controller's database failed")
        if refused is not None:
            return refused
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            return self._too_large()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > self._max_bytes:
                    return self._too_large()
                await asyncio.to_thread(spool.write, chunk)
            try:
                await asyncio.to_thread(self._check_archive, spool)
            except ArchiveError as error:
                return _error(400, str(error))
            try:
                info = await self._store.put_snapshot(_file_chunks(spool))
            except StoreError:
                return _error(503, "the controller's database failed")
        return JSONResponse(
            {"id": info.id, "sha256": info.sha256, "size": info.size}, status_code=201
        )

    async def download(self, request: Request) -> Response:
        """``GET /api/v1/snapshots/{id}``: the ``.tar.gz`` bytes, to the admin or the worker
        of a running task of a build of this snapshot."""
        snapshot_id = request.path_params["snapshot_id"]
        try:
            refusal = await self._refusal(request, snapshot_id)
            if refusal is not None:
                return refusal
            info = await self._store.get_snapshot(snapshot_id)
        except StoreError:
            return _error(503, "the controller's database failed")
        if info is None:
            return _error(404, f"no snapshot {snapshot_id!r}")
        return StreamingResponse(
            self._store.iter_snapshot(snapshot_id),
            media_type=GZIP_MEDIA_TYPE,
            headers={"Content-Length": str(info.size)},
        )

    async def _refusal(self, request: Request, snapshot_id: str) -> Response | None:
        """Return why the caller may not read the snapshot, or None if it may."""
        headers = request.headers
        if REGISTRATION_TOKEN_HEADER not in headers:
            if "authorization" not in headers:
                return _unauthorized()
            return await refusal(self._access, request, Role.OPERATOR)
        try:
            caller = await self._workers.task(headers)
        except AuthError as error:
            return _error(401 if error.code == "unauthenticated" else 403, error.message)
        if caller.task.stopped:
            return _error(403, f"task {caller.task.id} has stopped")
        build = await self._store.get_build(caller.task.build_id)
        if build is None or build.source.snapshot != snapshot_id:
            return _error(
                403,
                f"the build of task {caller.task.id} is not a build of snapshot {snapshot_id!r}",
            )
        return None


def _unauthorized() -> JSONResponse:
    response = _error(401, "missing or wrong admin token (Bearer), or task headers")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
