"""The five cache and artifact calls of ``CirrusCIService``, routed to their services.

``TwirpServices`` authenticates the task (as for ``InitialCommands``) and hands the decoded
message here; without a blob store the calls answer Twirp ``unimplemented``.
"""

from __future__ import annotations

from app.controller.artifact_service import ArtifactService
from app.controller.cache_service import CacheService
from app.controller.twirp_errors import TwirpError
from domain.protocol import ArtifactsCommit, ArtifactUploadRequest, CacheInfoRequest, CacheKey
from domain.store import TaskAssignment

BLOB_METHODS = (
    "CacheInfo",
    "GenerateCacheDownloadURLs",
    "GenerateCacheUploadURL",
    "GenerateArtifactUploadURLs",
    "CommitUploadedArtifacts",
)


class BlobCalls:
    """Answers the cache and artifact calls of authenticated tasks."""

    def __init__(self, caches: CacheService, artifacts: ArtifactService) -> None:
        self.caches = caches
        self.artifacts = artifacts

    async def answer(self, method: str, task: TaskAssignment, message: object) -> object:
        """Answer ``method`` for ``task``."""
        if isinstance(message, CacheInfoRequest):
            return await self.caches.cache_info(task, message)
        if isinstance(message, CacheKey):
            if method == "GenerateCacheUploadURL":
                return await self.caches.upload_url(task, message)
            return await self.caches.download_urls(task, message)
        if isinstance(message, ArtifactUploadRequest):
            return await self.artifacts.upload_urls(task, message)
        if isinstance(message, ArtifactsCommit):
            return await self.artifacts.commit(task, message)
        raise TwirpError("internal", f"{method}: unexpected message {type(message).__name__}")


def no_blob_store(method: str) -> TwirpError:
    """The answer of a controller without a blob store."""
    return TwirpError("unimplemented", f"{method}: this controller keeps no caches or artifacts")
