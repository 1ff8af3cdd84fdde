"""``/blobs/{key}``: the filesystem blob store's upload and download endpoints.

The URLs come from ``BlobStore.upload_url``/``download_url`` (answers of the cache and artifact
Twirp calls) and carry their own credential: ``?expires=<unix>&sig=<hmac>`` for one method on
one key (``domain.blob_signing.BlobUrlVerifier``). No bearer token and no worker headers are
looked at.

* ``PUT`` streams the body into the store (never whole in memory), refuses more than
  ``max_bytes`` with a 413, checks an optional ``X-Cirrus-Sha256`` header, and answers
  ``201 {"key", "size", "sha256"}``.
* ``GET`` streams the blob with its ``Content-Length``; a blob found corrupted at the end of
  the read aborts the response, so the client sees a short body, never a wrong one.

A refused signature is a 403 with a one-line ``{"error": ...}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from domain.blob_signing import BlobUrlVerifier, SignatureError
from domain.blobs import BlobIntegrityError, BlobStore, InvalidBlobKey, validate_key

log = logging.getLogger("cirrus.controller")

DEFAULT_BLOB_MAX_BYTES = 8 * 1024 * 1024 * 1024
"""The largest blob a ``PUT /blobs/...`` accepts unless ``blobs: max-bytes`` says otherwise."""
SHA256_HEADER = "x-cirrus-sha256"
"""Optional request header of a PUT: the hex SHA-256 the body must have."""


class _TooLarge(Exception):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BlobsApi:
    """The two ``/blobs`` endpoints; ``routes()`` mounts them."""

    def __init__(
        self, blobs: BlobStore, signer: BlobUrlVerifier, *, max_bytes: int = DEFAULT_BLOB_MAX_BYTES
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._blobs = blobs
        self._signer = signer
        self._max_bytes = max_bytes

    def routes(self) -> list[Route]:
        """Return the routes of ``/blobs/{key}``."""
        return [
            Route("/blobs/{key:path}", self.upload, methods=["PUT"]),
            Route("/blobs/{key:path}", self.download, methods=["GET"]),
        ]

    def _refusal(self, request: Request, method: str) -> tuple[str, Response | None]:
        key = str(request.path_params["key"])
        try:
            validate_key(key)
            self._signer.verify(
                method, key, request.query_params.get("expires"), request.query_params.get("sig")
            )
        except InvalidBlobKey as error:
            return key, _error(400, str(error))
        except SignatureError as error:
            return key, _error(403, str(error))
        return key, None

    async def upload(self, request: Request) -> Response:
        """``PUT /blobs/{key}``: store the body; ``201 {"key", "size", "sha256"}``."""
        key, refusal = self._refusal(request, "PUT")
        if refusal is not None:
            return refusal
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            return self._too_large()
        try:
            info = await self._blobs.put(
                key, self._capped(request), sha256=request.headers.get(SHA256_HEADER)
            )
        except _TooLarge:
            return self._too_large()
        except ClientDisconnect:
            # A client killed mid-upload: nothing was published (``put`` dropped its temporary
            # file); a line, not a traceback. Nobody reads the answer.
            log.warning("upload of blob %s abandoned: the client went away", key)
            return _error(400, "the client went away during the upload")
        except BlobIntegrityError as error:
            return _error(422, str(error))
        except InvalidBlobKey as error:
            return _error(400, str(error))
        log.info("blob %s stored: %d bytes, sha256 %s", info.key, info.size, info.sha256)
        return JSONResponse(
            {"key": info.key, "size": info.size, "sha256": info.sha256}, status_code=201
        )

    async def _capped(self, request: Request) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_bytes:
                raise _TooLarge
            yield chunk

    def _too_large(self) -> JSONResponse:
        return _error(413, f"the blob is larger than the limit of {self._max_bytes} bytes")

    async def download(self, request: Request) -> Response:
        """``GET /blobs/{key}``: the blob's bytes, streamed."""
        key, refusal = self._refusal(request, "GET")
        if refusal is not None:
            return refusal
        info = await self._blobs.stat(key)
        if info is None:
            return _error(404, f"no blob {key!r}")
        return StreamingResponse(
            self._logged(key, self._blobs.get(key)),
            media_type="application/octet-stream",
            headers={"content-length": str(info.size), SHA256_HEADER: info.sha256},
        )

    async def _logged(self, key: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        except BlobIntegrityError as error:
            log.error("blob %s: %s", key, error)
            raise
