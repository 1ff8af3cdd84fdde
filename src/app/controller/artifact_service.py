"""The artifact calls of ``CirrusCIService``: ``GenerateArtifactUploadURLs`` and
``CommitUploadedArtifacts``.

Files go straight to the blob store under ``artifacts/<task id>/<name>/<path>`` through
short-lived URLs; they become the task's artifacts only when the commit finds every one of them
uploaded with the size the worker declares (a worker killed halfway leaves an orphan blob that
retention collects, never a partial artifact). ``format: junit`` files are parsed then into the
task's test results (by the ``TestReportParser`` the composition root gives); a file that is
not JUnit XML still commits, and its task's results carry a notice saying so.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from app.controller.cache_service import URL_SECONDS
from app.controller.twirp_errors import TwirpError
from domain.artifacts import (
    ArtifactRecord,
    ArtifactStore,
    TestReportParser,
    TestResults,
    merge_results,
)
from domain.blobs import BlobIntegrityError, BlobNotFound, BlobStore, InvalidBlobKey, artifact_key
from domain.ports import Clock
from domain.protocol import (
    ArtifactFileInfo,
    ArtifactsCommit,
    ArtifactUploadRequest,
    ArtifactUploadUrls,
    UploadUrl,
)
from domain.store import TaskAssignment

log = logging.getLogger("cirrus.controller")

JUNIT_FORMAT = "junit"
JUNIT_MAX_BYTES = 256 * 1024 * 1024
"""A larger JUnit file is kept as an artifact but not parsed (its results carry a notice)."""


def _key(task: TaskAssignment, name: str, file: ArtifactFileInfo) -> str:
    if not name or "/" in name:
        raise TwirpError("invalid_argument", f"artifact name {name!r} must be one path segment")
    try:
        return artifact_key(task.id, name, file.path)
    except InvalidBlobKey as error:
        raise TwirpError(
            "invalid_argument", f"artifact {name}: file {file.path!r}: {error}"
        ) from None


class ArtifactService:
    """Answers the two artifact calls for authenticated tasks."""

    def __init__(
        self, blobs: BlobStore, index: ArtifactStore, clock: Clock, junit: TestReportParser
    ) -> None:
        self._blobs = blobs
        self._index = index
        self._clock = clock
        self._junit_parser = junit

    async def upload_urls(self, task: TaskAssignment, request: ArtifactUploadRequest) -> object:
        """``GenerateArtifactUploadURLs``: one PUT URL per file, in the request's order."""
        urls: list[UploadUrl] = []
        for file in request.files:
            url = await self._blobs.upload_url(_key(task, request.name, file), URL_SECONDS)
            urls.append(UploadUrl(url=url.url, headers=url.headers))
        return ArtifactUploadUrls(urls=tuple(urls))

    async def commit(self, task: TaskAssignment, request: ArtifactsCommit) -> object:
        """``CommitUploadedArtifacts``: check every file's blob, record them, parse JUnit."""
        now = self._clock.now()
        records: list[ArtifactRecord] = []
        for file in request.files:
            key = _key(task, request.name, file)
            info = await self._blobs.stat(key)
            if info is None:
                raise TwirpError(
                    "failed_precondition",
                    f"artifact {request.name}: file {file.path} was never uploaded",
                )
            if info.size != file.size_in_bytes:
                raise TwirpError(
                    "failed_precondition",
                    f"artifact {request.name}: file {file.path} was uploaded with {info.size} "
                    f"bytes, not {file.size_in_bytes}",
                )
            path = key.split("/", 3)[3]
            records.append(
                ArtifactRecord(
                    task.id, request.name, path, info.size, info.sha256,
                    request.type, request.format, key, now,
                )
            )  # fmt: skip
        tests: TestResults | None = None
        if request.format.lower() == JUNIT_FORMAT:
            for record in records:
                tests = merge_results(tests, await self._junit(record))
        await self._index.commit_artifacts(task.id, records, tests)
        log.info("task %s: artifact %s committed (%d files)", task.id, request.name, len(records))
        return None  # the empty response

    async def _junit(self, record: ArtifactRecord) -> TestResults:
        label = f"{record.name}/{record.path}"
        if record.size > JUNIT_MAX_BYTES:
            return TestResults(notices=(f"{label}: larger than {JUNIT_MAX_BYTES} bytes, not read",))
        # Spooled to disk, then parsed as a stream in a thread: memory stays bounded and the
        # event loop keeps serving.
        with tempfile.TemporaryDirectory(prefix="cirrus-junit-") as directory:
            path = Path(directory) / "junit.xml"
            try:
                with path.open("wb") as spool:
                    async for chunk in self._blobs.get(record.blob_key):
                        await asyncio.to_thread(spool.write, chunk)
            except (BlobNotFound, BlobIntegrityError) as error:
                return TestResults(notices=(f"{label}: not readable ({error})",))
            return await asyncio.to_thread(self._junit_parser, str(path), label)
