"""Moving blob bytes (cache archives, artifact files) between the worker host and a blob URL.

The URLs come from the controller's ``Generate…URL(s)`` answers: absolute (an S3 presigned URL)
or a path starting with ``/blobs/`` that is joined to the controller's endpoint. Only the
answer's own headers are sent (the URL's signature is the credential, never the worker's
tokens). Both directions stream through a file in 1 MiB blocks: memory stays bounded whatever
the size. Connection trouble and 5xx answers are retried with backoff; other answers are not.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import BinaryIO

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

# The errors are the domain's (``domain.worker_tools``), so that the use cases catch them
# without importing this adapter; re-exported here for the adapter's own callers.
from domain.worker_tools import BlobMissingError, BlobTransferError

__all__ = ["BlobMissingError", "BlobTransfer", "BlobTransferError", "resolve_url"]

CHUNK = 1024 * 1024
Sleep = Callable[[float], Awaitable[None]]


class _TransientError(BlobTransferError):
    """Worth another try."""


def resolve_url(endpoint: str, url: str) -> str:
    """``url`` itself when absolute, else joined to the controller's ``endpoint``."""
    if url.startswith(("http://", "https://")):
        return url
    return endpoint.rstrip("/") + "/" + url.lstrip("/")


def _check(response: httpx.Response, what: str, url: str) -> None:
    shown = url.split("?", 1)[0]  # the query holds the signature
    status = response.status_code
    if status >= 500 or status == 429:
        raise _TransientError(f"{what} failed: HTTP {status} from {shown}")
    if status == 404:
        raise BlobMissingError(f"{what} failed: nothing at {shown} (HTTP 404)")
    if not 200 <= status < 300:
        raise BlobTransferError(f"{what} failed: HTTP {status} from {shown}")


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, CHUNK):
        yield chunk


class BlobTransfer:
    """Uploads and downloads blobs for one controller endpoint (a ``BlobTransport``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        attempts: int = 3,
        initial_wait: float = 1.0,
        timeout: float = 600.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._endpoint = endpoint
        self._attempts = attempts
        self._initial_wait = initial_wait
        self._timeout = httpx.Timeout(timeout, connect=30.0)
        self._sleep = sleep

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception_type(_TransientError),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._initial_wait, max=15.0),
            sleep=self._sleep,
            reraise=True,
        )

    async def download(self, url: str, target: str, headers: Mapping[str, str] = {}) -> int:
        """GET ``url`` into the file ``target``; return the bytes written."""
        full = resolve_url(self._endpoint, url)
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            async for attempt in self._retrying():
                with attempt:
                    return await self._download_once(client, full, target, headers)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _download_once(
        self, client: httpx.AsyncClient, url: str, target: str, headers: Mapping[str, str]
    ) -> int:
        written = 0
        try:
            async with client.stream("GET", url, headers=dict(headers)) as response:
                _check(response, "downloading", url)
                file = await asyncio.to_thread(open, target, "wb")
                try:
                    async for chunk in response.aiter_bytes(CHUNK):
                        await asyncio.to_thread(file.write, chunk)
                        written += len(chunk)
                finally:
                    await asyncio.to_thread(file.close)
        except httpx.TransportError as exc:
            raise _TransientError(
                f"downloading from {url.split('?', 1)[0]} failed: {exc or type(exc).__name__}"
            ) from exc
        return written

    async def upload(self, url: str, source: str, headers: Mapping[str, str] = {}) -> None:
        """PUT the file ``source`` to ``url`` with its length (not chunked: S3 needs it)."""
        full = resolve_url(self._endpoint, url)
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            async for attempt in self._retrying():
                with attempt:
                    await self._upload_once(client, full, source, headers)

    async def _upload_once(
        self, client: httpx.AsyncClient, url: str, source: str, headers: Mapping[str, str]
    ) -> None:
        size = await asyncio.to_thread(os.path.getsize, source)
        sent = {"Content-Type": "application/octet-stream", **headers}
        sent["Content-Length"] = str(size)
        file = await asyncio.to_thread(open, source, "rb")
        try:
            response = await client.put(url, content=_chunks(file), headers=sent)
        except httpx.TransportError as exc:
            raise _TransientError(
                f"uploading to {url.split('?', 1)[0]} failed: {exc or type(exc).__name__}"
            ) from exc
        finally:
            await asyncio.to_thread(file.close)
        _check(response, "uploading", url)
