"""The default blob store: files under a directory of the controller's host.

Layout under ``root``::

    tmp/<id>                 uploads in progress (collected by ``collect_partial_uploads``)
    data/<id[:2]>/<id>       blob contents, each written once under a fresh id
    index/<key>.json         {"key", "size", "sha256", "created_at", "data"}: the published blob

An upload streams into ``tmp/`` in 1 MiB steps while its SHA-256 and size are computed, moves
to ``data/`` and is published by writing its index document to a temporary file and renaming
it over ``index/<key>.json`` (same directory: atomic). A reader therefore sees the old blob or
the new one, never a mix; it opens the data file before reading, so a blob replaced or deleted
meanwhile is still read whole. Reads hash the content again and fail at the end on a mismatch.
URLs point at the controller's own ``/blobs/...`` endpoints, signed by ``signer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from adapters.blobs.signing import BlobSigner
from domain.blobs import (
    BlobInfo,
    BlobIntegrityError,
    BlobNotFound,
    BlobUrl,
    InvalidBlobKey,
    validate_key,
    validate_prefix,
    validate_sha256,
)

CHUNK_BYTES = 1024 * 1024
_INDEX_SUFFIX = ".json"


class FilesystemBlobStore:
    """Implements ``BlobStore`` on a local directory."""

    def __init__(
        self, root: Path, signer: BlobSigner, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self.signer = signer
        self._clock = clock
        self._tmp = root / "tmp"
        self._data = root / "data"
        self._index = root / "index"
        # Publishing and deleting read the old index document, then replace it: one at a time,
        # so that two writers of one key cannot both keep the same old data file alive.
        self._publish = asyncio.Lock()

    def _index_path(self, key: str) -> Path:
        return self._index / (validate_key(key) + _INDEX_SUFFIX)

    def _data_path(self, data_id: str) -> Path:
        return self._data / data_id[:2] / data_id

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, sha256: str | None = None
    ) -> BlobInfo:
        """Stream the chunks into a new blob; publish it only if complete and as expected."""
        index_path = self._index_path(key)
        expected = validate_sha256(sha256) if sha256 is not None else None
        data_id = uuid.uuid4().hex
        partial = self._tmp / data_id
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            file = await asyncio.to_thread(partial.open, "wb")
            try:
                # Small chunks (an HTTP body comes in 64 KiB pieces) are gathered to 1 MiB so
                # that each thread hop writes a useful amount.
                pending = bytearray()
                async for chunk in chunks:
                    pending += chunk
                    size += len(chunk)
                    if len(pending) >= CHUNK_BYTES:
                        await asyncio.to_thread(_write_and_hash, file, digest, bytes(pending))
                        pending.clear()
                await asyncio.to_thread(_write_and_hash, file, digest, bytes(pending))
                await asyncio.to_thread(_flush_and_sync, file)
            finally:
                await asyncio.to_thread(file.close)
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise BlobIntegrityError(
                    f"blob {key!r}: the content's SHA-256 is {actual}, not {expected}"
                )
            info = BlobInfo(key=key, size=size, sha256=actual, created_at=self._clock())
            await asyncio.to_thread(_move, partial, self._data_path(data_id))
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        async with self._publish:
            await asyncio.to_thread(self._publish_index, index_path, info, data_id)
        return info

    def _publish_index(self, index_path: Path, info: BlobInfo, data_id: str) -> None:
        old = _read_index(index_path)
        document = {
            "key": info.key,
            "size": info.size,
            "sha256": info.sha256,
            "created_at": info.created_at,
            "data": data_id,
        }
        try:
            index_path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            self._data_path(data_id).unlink(missing_ok=True)
            raise InvalidBlobKey(
                f"blob key {info.key!r} has a part that is already a blob's name"
            ) from None
        temporary = index_path.with_name(f".{index_path.name}.{data_id}.tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        os.replace(temporary, index_path)
        if old is not None:
            self._data_path(str(old["data"])).unlink(missing_ok=True)

    def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the blob's content, checking its size and SHA-256 at the end."""
        index_path = self._index_path(key)
        return self._read(key, index_path)

    async def _read(self, key: str, index_path: Path) -> AsyncIterator[bytes]:
        document = await asyncio.to_thread(_read_index, index_path)
        if document is None:
            raise BlobNotFound(key)
        try:
            file = await asyncio.to_thread(self._data_path(str(document["data"])).open, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        digest = hashlib.sha256()
        size = 0
        try:
            chunk = await asyncio.to_thread(_read_and_hash, file, digest)
            while chunk:
                # One chunk ahead: the file is closed before the last chunk is handed out, so a
                # reader that stops at Content-Length (a server shutting down) leaves no open file.
                following = await asyncio.to_thread(_read_and_hash, file, digest)
                if not following:
                    file.close()
                size += len(chunk)
                yield chunk
                chunk = following
        finally:
            file.close()
        if size != document["size"] or digest.hexdigest() != document["sha256"]:
            raise BlobIntegrityError(
                f"blob {key!r} is corrupted: {size} bytes with SHA-256 {digest.hexdigest()}, "
                f"stored as {document['size']} bytes with SHA-256 {document['sha256']}"
            )

    async def stat(self, key: str) -> BlobInfo | None:
        """Describe the blob from its index document, or None."""
        document = await asyncio.to_thread(_read_index, self._index_path(key))
        return _info(document) if document is not None else None

    async def delete(self, key: str) -> bool:
        """Unpublish the blob and remove its content; False when there was none."""
        index_path = self._index_path(key)
        async with self._publish:
            return await asyncio.to_thread(self._delete, index_path)

    def _delete(self, index_path: Path) -> bool:
        document = _read_index(index_path)
        if document is None:
            return False
        index_path.unlink(missing_ok=True)
        self._data_path(str(document["data"])).unlink(missing_ok=True)
        # Empty index directories go, so that a key may later become a directory's name.
        parent = index_path.parent
        while parent != self._index:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True

    async def list(self, prefix: str) -> AsyncIterator[BlobInfo]:
        """Every published blob whose key starts with ``prefix``, directory by directory."""
        validate_prefix(prefix)
        directory, _, _ = prefix.rpartition("/")
        pending = [self._index / directory if directory else self._index]
        while pending:
            here = pending.pop()
            subdirectories, documents = await asyncio.to_thread(_scan, here)
            pending.extend(sorted(subdirectories, reverse=True))
            for document in documents:
                if str(document["key"]).startswith(prefix):
                    yield _info(document)

    async def upload_url(self, key: str, expires_in: float) -> BlobUrl:
        """A signed ``/blobs/<key>`` URL to PUT the content to."""
        return self.signer.url("PUT", key, expires_in)

    async def download_url(self, key: str, expires_in: float) -> BlobUrl:
        """A signed ``/blobs/<key>`` URL to GET the content from."""
        return self.signer.url("GET", key, expires_in)

    async def collect_partial_uploads(self, older_than_seconds: float) -> int:
        """Remove uploads abandoned for longer than that (a killed client); return how many."""
        return await asyncio.to_thread(self._collect_partial, self._clock() - older_than_seconds)

    def _collect_partial(self, before: float) -> int:
        removed = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self._tmp) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < before:
                        Path(entry.path).unlink()
                        removed += 1
        return removed


def _write_and_hash(file: IO[bytes], digest: Any, piece: bytes) -> None:
    file.write(piece)
    digest.update(piece)


def _read_and_hash(file: IO[bytes], digest: Any) -> bytes:
    chunk = file.read(CHUNK_BYTES)
    digest.update(chunk)
    return chunk


def _flush_and_sync(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _read_index(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not isinstance(document, dict):
        return None
    return document


def _info(document: dict[str, Any]) -> BlobInfo:
    return BlobInfo(
        key=str(document["key"]),
        size=int(document["size"]),
        sha256=str(document["sha256"]),
        created_at=float(document["created_at"]),
    )


def _scan(directory: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    subdirectories: list[Path] = []
    documents: list[dict[str, Any]] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return subdirectories, documents
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirectories.append(Path(entry.path))
        elif entry.name.endswith(_INDEX_SUFFIX):
            document = _read_index(Path(entry.path))
            if document is not None:
                documents.append(document)
    return subdirectories, documents
