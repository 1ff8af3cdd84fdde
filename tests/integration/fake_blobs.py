"""The cache and artifact side of the fake controller: five Twirp methods and ``/blobs/``.

Written from the contract (CACHES.md, the original's proto), with hand-built JSON, not the
project's codec. Blobs are files in a private temporary directory (so a 2 GB upload costs the
test process no memory); URLs are relative ``/blobs/<key>?sig=<token>`` paths, as the
filesystem store hands out. Any worker credential sent to a blob URL is a violation.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, BinaryIO

Answer = tuple[int, dict[str, Any]]
METHODS = frozenset(
    {
        "CacheInfo",
        "GenerateCacheUploadURL",
        "GenerateCacheDownloadURLs",
        "GenerateArtifactUploadURLs",
        "CommitUploadedArtifacts",
    }
)
WORKER_HEADERS = ("registration-token", "session-token", "org.cirruslabs.client-secret")
SIGNATURE = "sig=fake-signature"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredBlob:
    """A blob's size, SHA-256 and when it was stored."""

    size: int
    sha256: str
    created_at: float
    task_id: str


def _error(code: str, message: str) -> Answer:
    status = {"not_found": 404, "failed_precondition": 412, "invalid_argument": 400}[code]
    return status, {"code": code, "msg": message}


class FakeBlobs:
    """Blob files plus the cache and artifact records of the fake controller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._directory = tempfile.mkdtemp(prefix="fake-blobs-")
        self._blobs: dict[str, StoredBlob] = {}
        self._upload_task: dict[str, str] = {}  # key -> task that was given its URL
        self.commits: list[tuple[str, dict[str, Any]]] = []  # (task id, request body)
        self.violations: list[str] = []
        self.uploads: list[str] = []  # keys, in the order their PUTs completed

    def close(self) -> None:
        """Remove the blob files."""
        shutil.rmtree(self._directory, ignore_errors=True)

    # --- observing ---------------------------------------------------------------------------

    def blob(self, key: str) -> bytes:
        """The bytes of a stored blob (small blobs only: read whole)."""
        with open(self._path(key), "rb") as file:
            return file.read()

    def stored(self, key: str) -> StoredBlob | None:
        """The record of a blob, if stored."""
        with self._lock:
            return self._blobs.get(key)

    def keys(self, prefix: str = "") -> list[str]:
        """The stored keys starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(k for k in self._blobs if k.startswith(prefix))

    def put_cache(self, key: str, data: bytes, task_id: str = "seed") -> None:
        """Store a cache archive as if a task had uploaded it."""
        self._store(f"caches/{key}", [data], task_id)

    # --- /blobs/ -----------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return os.path.join(self._directory, hashlib.sha256(key.encode()).hexdigest())

    def _key_of(self, path: str, headers: dict[str, str]) -> str | None:
        parsed = urllib.parse.urlsplit(path)
        if not parsed.path.startswith("/blobs/") or parsed.query != SIGNATURE:
            return None
        for name in WORKER_HEADERS:
            if name in headers:
                with self._lock:
                    self.violations.append(f"{name} sent to {parsed.path}")
        return urllib.parse.unquote(parsed.path.removeprefix("/blobs/"))

    def _store(self, key: str, chunks: Any, task_id: str) -> StoredBlob:
        digest = hashlib.sha256()
        size = 0
        partial = self._path(key) + ".partial"
        with open(partial, "wb") as file:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
        os.replace(partial, self._path(key))
        record = StoredBlob(size, digest.hexdigest(), time.time(), task_id)
        with self._lock:
            self._blobs[key] = record
            self.uploads.append(key)
        return record

    def put(self, path: str, headers: dict[str, str], body: io.BufferedIOBase) -> int:
        """``PUT /blobs/<key>``: stream the body to a file; the HTTP status."""
        key = self._key_of(path, headers)
        if key is None:
            return 403
        if "content-length" not in headers:
            with self._lock:
                self.violations.append(f"PUT {key} without Content-Length")
            return 411
        left = int(headers["content-length"])

        def chunks() -> Any:
            nonlocal left
            while left > 0:
                chunk = body.read(min(CHUNK, left))
                if not chunk:
                    raise ConnectionError("body ended early")
                left -= len(chunk)
                yield chunk

        with self._lock:
            task_id = self._upload_task.get(key, "")
        self._store(key, chunks(), task_id)
        return 201

    def open_for_get(self, path: str, headers: dict[str, str]) -> tuple[int, BinaryIO | None]:
        """``GET /blobs/<key>``: the status and the open file to stream."""
        key = self._key_of(path, headers)
        if key is None:
            return 403, None
        if self.stored(key) is None:
            return 404, None
        return 200, open(self._path(key), "rb")  # the handler closes it

    # --- Twirp -------------------------------------------------------------------------------

    def answer(self, method: str, task_id: str, body: dict[str, Any]) -> Answer:
        """Answer one of ``METHODS`` for ``task_id``."""
        if method == "CacheInfo":
            return self._cache_info(body)
        if method == "GenerateCacheDownloadURLs":
            key = f"caches/{body.get('cacheKey', '')}"
            if self.stored(key) is None:
                return _error("not_found", f"no cache {body.get('cacheKey')!r}")
            return 200, {"urls": [self._url(key)]}
        if method == "GenerateCacheUploadURL":
            key = f"caches/{body.get('cacheKey', '')}"
            with self._lock:
                self._upload_task[key] = task_id
            return 200, {"url": self._url(key)}
        if method == "GenerateArtifactUploadURLs":
            urls = []
            for file in body.get("files") or []:
                key = f"artifacts/{task_id}/{body.get('name', '')}/{file.get('path', '')}"
                urls.append({"url": self._url(key)})
            return 200, {"urls": urls}
        return self._commit(task_id, body)

    def _url(self, key: str) -> str:
        return f"/blobs/{urllib.parse.quote(key)}?{SIGNATURE}"

    def _info(self, key: str, record: StoredBlob) -> dict[str, Any]:
        return {
            "key": key.removeprefix("caches/"),
            "sizeInBytes": str(record.size),
            "creationTimestamp": str(int(record.created_at * 1000)),
            "createdByTaskId": record.task_id,
        }

    def _cache_info(self, body: dict[str, Any]) -> Answer:
        key = str(body.get("cacheKey") or "")
        with self._lock:
            if key:
                record = self._blobs.get(f"caches/{key}")
                found = [(f"caches/{key}", record)] if record is not None else []
            else:
                prefixes = [f"caches/{p}" for p in body.get("cacheKeyPrefixes") or []]
                found = sorted(
                    (
                        (k, r)
                        for k, r in self._blobs.items()
                        if any(k.startswith(p) for p in prefixes)
                    ),
                    key=lambda item: item[1].created_at,
                )[-1:]
        if not found:
            return _error("not_found", "no such cache")
        return 200, {"info": self._info(*found[0])}

    def _commit(self, task_id: str, body: dict[str, Any]) -> Answer:
        for file in body.get("files") or []:
            key = f"artifacts/{task_id}/{body.get('name', '')}/{file.get('path', '')}"
            record = self.stored(key)
            if record is None or str(record.size) != str(file.get("sizeInBytes", "0")):
                return _error("failed_precondition", f"{file.get('path')} was not uploaded")
        with self._lock:
            self.commits.append((task_id, body))
        return 200, {}
