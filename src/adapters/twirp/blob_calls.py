"""The cache and artifact calls of the Twirp client (``CacheInfo``, ``Generate…URL(s)``,
``CommitUploadedArtifacts``), kept apart from the transport of ``adapters.twirp.client``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from adapters.twirp.codec import CI_SERVICE
from domain.errors import DefiniteControllerError
from domain.protocol import (
    ArtifactFileInfo,
    ArtifactsCommit,
    ArtifactUploadRequest,
    ArtifactUploadUrls,
    CacheInfo,
    CacheInfoRequest,
    CacheInfoResponse,
    CacheKey,
    DownloadUrls,
    TaskRef,
    UploadUrl,
)

T = TypeVar("T")


class BlobCalls:
    """Mixed into the Twirp client, which provides ``_task_call`` and ``_decode``."""

    async def _task_call(self, service: str, method: str, task: TaskRef, message: object) -> object:
        raise NotImplementedError

    def _decode(self, method: str, body: object, kind: type[T]) -> T:
        raise NotImplementedError

    async def cache_info(
        self, task: TaskRef, cache_key: str, prefixes: Sequence[str] = ()
    ) -> CacheInfo | None:
        """The cache of ``cache_key`` (or the newest under ``prefixes``); ``None`` on not_found."""
        request = CacheInfoRequest(cache_key=cache_key, cache_key_prefixes=tuple(prefixes))
        try:
            body = await self._task_call(CI_SERVICE, "CacheInfo", task, request)
        except DefiniteControllerError as error:
            if error.code == "not_found":
                return None
            raise
        return self._decode("CacheInfo", body, CacheInfoResponse).info

    async def cache_download_urls(self, task: TaskRef, cache_key: str) -> tuple[str, ...]:
        """URLs to GET the cache's archive from."""
        body = await self._task_call(
            CI_SERVICE, "GenerateCacheDownloadURLs", task, CacheKey(cache_key)
        )
        return self._decode("GenerateCacheDownloadURLs", body, DownloadUrls).urls

    async def cache_upload_url(self, task: TaskRef, cache_key: str) -> UploadUrl:
        """The URL (and headers) to PUT the cache's archive to."""
        body = await self._task_call(
            CI_SERVICE, "GenerateCacheUploadURL", task, CacheKey(cache_key)
        )
        return self._decode("GenerateCacheUploadURL", body, UploadUrl)

    async def artifact_upload_urls(
        self, task: TaskRef, name: str, files: Sequence[ArtifactFileInfo]
    ) -> tuple[UploadUrl, ...]:
        """One upload URL per file of artifact ``name``, in the same order."""
        request = ArtifactUploadRequest(name=name, files=tuple(files))
        body = await self._task_call(CI_SERVICE, "GenerateArtifactUploadURLs", task, request)
        urls = self._decode("GenerateArtifactUploadURLs", body, ArtifactUploadUrls).urls
        if len(urls) != len(request.files):
            raise DefiniteControllerError(
                "malformed_response",
                f"GenerateArtifactUploadURLs: {len(urls)} URLs for {len(request.files)} files",
            )
        return urls

    async def commit_artifacts(self, task: TaskRef, commit: ArtifactsCommit) -> None:
        """Make the uploaded files of an artifact visible."""
        await self._task_call(CI_SERVICE, "CommitUploadedArtifacts", task, commit)
