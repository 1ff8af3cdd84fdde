"""Blob store on S3-compatible object storage (``obstore``), for controllers sharing one store.

Objects under the bucket (and the configured prefix)::

    data/<key>      the blob's content
    sha256/<key>    {"sha256", "size", "e_tag"}: the content's SHA-256, for that e_tag

``put`` streams through obstore's multipart upload (5 MiB parts, two at a time: bounded memory)
while hashing; a wrong expected SHA-256 fails the stream before its end, which aborts the
upload, so nothing is kept and an older blob of that key stays. Uploads through presigned URLs
bypass the controller: the first ``stat`` or ``get`` of such a blob reads it once to record its
SHA-256 (the sidecar's ``e_tag`` tells a sidecar of an older content apart). Every ``get``
hashes the content again and fails at the end on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from domain.blobs import (
    BlobInfo,
    BlobIntegrityError,
    BlobNotFound,
    BlobUrl,
    validate_key,
    validate_prefix,
    validate_sha256,
)
from domain.errors import CirrusError

DATA = "data/"
SIDECARS = "sha256/"
PART_BYTES = 5 * 1024 * 1024
"""Multipart part size (S3's minimum); with ``PARTS_IN_FLIGHT`` it bounds an upload's memory."""
PARTS_IN_FLIGHT = 2
READ_CHUNK_BYTES = 1024 * 1024


class BlobStoreError(CirrusError):
    """The object storage failed or refused a request; the message names the blob."""


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where the blobs live: bucket, endpoint (empty: AWS), region, credentials, key prefix."""

    bucket: str
    endpoint: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    prefix: str = ""


def open_s3_store(settings: S3Settings) -> S3Store:
    """The obstore client of these settings (nothing is contacted yet)."""
    config: dict[str, Any] = {"region": settings.region}
    if settings.endpoint:
        config["endpoint"] = settings.endpoint
    if settings.access_key_id:
        config["access_key_id"] = settings.access_key_id
        config["secret_access_key"] = settings.secret_access_key
    return S3Store(
        settings.bucket,
        prefix=settings.prefix.strip("/") or None,
        config=config,  # type: ignore[arg-type]  # S3Config is a TypedDict of these keys
        client_options={"allow_http": settings.endpoint.startswith("http://")},
    )


class S3BlobStore:
    """Implements ``BlobStore`` on an S3 bucket."""

    def __init__(self, store: S3Store) -> None:
        self._store = store

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, sha256: str | None = None
    ) -> BlobInfo:
        """Stream the chunks into the object; a wrong ``sha256`` aborts the upload."""
        validate_key(key)
        expected = validate_sha256(sha256) if sha256 is not None else None
        digest = hashlib.sha256()
        counted = [0]

        async def hashed() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                digest.update(chunk)
                counted[0] += len(chunk)
                yield chunk
            if expected is not None and digest.hexdigest() != expected:
                raise BlobIntegrityError(
                    f"blob {key!r}: the content's SHA-256 is {digest.hexdigest()}, not {expected}"
                )

        try:
            result = await obstore.put_async(
                self._store,
                DATA + key,
                hashed(),
                chunk_size=PART_BYTES,
                max_concurrency=PARTS_IN_FLIGHT,
            )
        except BaseError as error:
            raise BlobStoreError(f"cannot store blob {key!r}: {error}") from None
        await self._write_sidecar(key, digest.hexdigest(), counted[0], result["e_tag"])
        meta = await self._head(key)
        created = meta["last_modified"].timestamp() if meta is not None else 0.0
        return BlobInfo(key, counted[0], digest.hexdigest(), created)

    async def _head(self, key: str) -> Any:
        try:
            return await obstore.head_async(self._store, DATA + key)
        except FileNotFoundError:
            return None
        except BaseError as error:
            raise BlobStoreError(f"cannot read blob {key!r}: {error}") from None

    async def _write_sidecar(self, key: str, sha256: str, size: int, e_tag: str | None) -> None:
        document = json.dumps({"sha256": sha256, "size": size, "e_tag": e_tag}).encode()
        try:
            await obstore.put_async(self._store, SIDECARS + key, document)
        except BaseError as error:
            raise BlobStoreError(f"cannot store the SHA-256 of blob {key!r}: {error}") from None

    async def _sidecar(self, key: str, meta: Any) -> str | None:
        """The recorded SHA-256 of the object's current content, if any."""
        try:
            result = await obstore.get_async(self._store, SIDECARS + key)
            document = json.loads(bytes(await result.bytes_async()))
        except FileNotFoundError:
            return None
        except (BaseError, ValueError):
            return None
        if (
            isinstance(document, dict)
            and document.get("e_tag") == meta["e_tag"]
            and document.get("size") == meta["size"]
        ):
            return str(document["sha256"])
        return None

    def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object, checking its SHA-256 at the end."""
        validate_key(key)
        return self._read(key)

    async def _read(self, key: str) -> AsyncIterator[bytes]:
        try:
            result = await obstore.get_async(self._store, DATA + key)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except BaseError as error:
            raise BlobStoreError(f"cannot read blob {key!r}: {error}") from None
        meta = result.meta
        recorded = await self._sidecar(key, meta)
        digest = hashlib.sha256()
        size = 0
        async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
            data = bytes(chunk)
            digest.update(data)
            size += len(data)
            yield data
        actual = digest.hexdigest()
        if size != meta["size"] or (recorded is not None and actual != recorded):
            raise BlobIntegrityError(
                f"blob {key!r} is corrupted: {size} bytes with SHA-256 {actual}, "
                f"recorded as {meta['size']} bytes with SHA-256 {recorded}"
            )
        if recorded is None:
            await self._write_sidecar(key, actual, size, meta["e_tag"])

    async def stat(self, key: str) -> BlobInfo | None:
        """Describe the object; its SHA-256 is computed once if it was uploaded by URL."""
        validate_key(key)
        meta = await self._head(key)
        if meta is None:
            return None
        recorded = await self._sidecar(key, meta)
        if recorded is None:
            digest = hashlib.sha256()
            try:
                async for chunk in self._read(key):
                    digest.update(chunk)
            except BlobNotFound:
                return None
            recorded = digest.hexdigest()
        return BlobInfo(key, int(meta["size"]), recorded, meta["last_modified"].timestamp())

    async def delete(self, key: str) -> bool:
        """Delete the object and its sidecar; False when there was none."""
        validate_key(key)
        if await self._head(key) is None:
            return False
        try:
            await obstore.delete_async(self._store, [DATA + key, SIDECARS + key])
        except BaseError as error:
            raise BlobStoreError(f"cannot delete blob {key!r}: {error}") from None
        return True

    async def list(self, prefix: str) -> AsyncIterator[BlobInfo]:
        """Every object whose key starts with ``prefix`` (their recorded SHA-256 looked up)."""
        validate_prefix(prefix)
        # obstore lists by whole path segments: list the prefix's directory, then filter.
        directory = prefix.rpartition("/")[0]
        try:
            async for batch in obstore.list(self._store, DATA + directory if directory else DATA):
                for meta in batch:
                    key = str(meta["path"]).removeprefix(DATA)
                    if key.startswith(prefix):
                        sha = await self._sidecar(key, meta)
                        yield BlobInfo(
                            key, int(meta["size"]), sha or "", meta["last_modified"].timestamp()
                        )
        except BaseError as error:
            raise BlobStoreError(f"cannot list blobs under {prefix!r}: {error}") from None

    async def upload_url(self, key: str, expires_in: float) -> BlobUrl:
        """A presigned URL to PUT the object."""
        return await self._sign("PUT", key, expires_in)

    async def download_url(self, key: str, expires_in: float) -> BlobUrl:
        """A presigned URL to GET the object."""
        return await self._sign("GET", key, expires_in)

    async def _sign(self, method: str, key: str, expires_in: float) -> BlobUrl:
        validate_key(key)
        try:
            url = await obstore.sign_async(
                self._store,
                "PUT" if method == "PUT" else "GET",
                DATA + key,
                timedelta(seconds=expires_in),
            )
        except BaseError as error:
            raise BlobStoreError(f"cannot sign a URL of blob {key!r}: {error}") from None
        return BlobUrl(url)
