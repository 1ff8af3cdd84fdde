"""The blob store port: large byte objects (cache archives, artifact files) kept by key.

Keys are relative POSIX paths such as ``caches/<scope>/<cache key>`` or
``artifacts/<task id>/<name>/<path>``. Bytes stream in and out as async iterables of chunks, and
every blob carries the SHA-256 of its content, checked on the way in and on the way out. The
Twirp calls hand out short-lived URLs (``upload_url``/``download_url``) so that the bytes never
travel inside a JSON message::

    CirrusError
    ├── BlobNotFound          no blob under that key
    ├── BlobIntegrityError    SHA-256 or size mismatch (on upload or on read)
    └── InvalidBlobKey        a key that is not a clean relative path
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from domain.errors import CirrusError

CACHES_PREFIX = "caches/"
ARTIFACTS_PREFIX = "artifacts/"
MAX_KEY_LENGTH = 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BlobNotFound(CirrusError):
    """No blob is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no blob {key!r}")
        self.key = key


class BlobIntegrityError(CirrusError):
    """A blob's content does not match its expected SHA-256 or size."""


class InvalidBlobKey(CirrusError):
    """A key that is not a clean relative POSIX path."""


def _frozen_headers(value: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in (value or {}).items()})


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows about one blob."""

    key: str
    size: int
    sha256: str
    created_at: float


@dataclass(frozen=True, slots=True)
class BlobUrl:
    """A URL for one request on one blob: absolute, or a path starting with ``/blobs/``."""

    url: str
    headers: Mapping[str, str] = field(default_factory=_frozen_headers)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _frozen_headers(self.headers))


class BlobStore(Protocol):
    """Streams blobs in and out by key, with a SHA-256 checked both ways."""

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, sha256: str | None = None
    ) -> BlobInfo:
        """Store the chunks under the key; a different ``sha256`` raises and keeps nothing."""
        ...

    def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the blob; BlobNotFound if absent, BlobIntegrityError at the end if corrupted."""
        ...

    async def stat(self, key: str) -> BlobInfo | None:
        """Describe the blob, or None when there is none."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the blob; False when there was none."""
        ...

    def list(self, prefix: str) -> AsyncIterator[BlobInfo]:
        """Every blob whose key starts with the prefix."""
        ...

    async def upload_url(self, key: str, expires_in: float) -> BlobUrl:
        """A URL to PUT the blob's body to, valid for ``expires_in`` seconds."""
        ...

    async def download_url(self, key: str, expires_in: float) -> BlobUrl:
        """A URL to GET the blob from, valid for ``expires_in`` seconds."""
        ...


def validate_key(key: str) -> str:
    """Return the key if it is a clean relative POSIX path, else raise InvalidBlobKey."""
    if not key:
        raise InvalidBlobKey("a blob key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKey(f"a blob key must be at most {MAX_KEY_LENGTH} characters")
    if "\x00" in key or "\\" in key:
        raise InvalidBlobKey(f"blob key {key!r} contains a NUL or a backslash")
    if key.startswith("/"):
        raise InvalidBlobKey(f"blob key {key!r} must be relative")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidBlobKey(f"blob key {key!r} has an empty, '.' or '..' part")
    return key


def validate_prefix(prefix: str) -> str:
    """Return a list prefix if it is empty or a clean key start (a trailing '/' allowed)."""
    if prefix:
        validate_key(prefix.removesuffix("/"))
    return prefix


def validate_sha256(value: str) -> str:
    """Return a lower-case hex SHA-256, or raise BlobIntegrityError for anything else."""
    lowered = value.lower()
    if not _SHA256_HEX.fullmatch(lowered):
        raise BlobIntegrityError(f"{value!r} is not a hex SHA-256")
    return lowered


def _key_part(value: str, what: str) -> str:
    if not value:
        raise InvalidBlobKey(f"the {what} of a blob key must not be empty")
    return value


def cache_key(scope: str, cache_name: str) -> str:
    """The blob key of a cache: ``caches/<scope>/<cache key>``."""
    return validate_key(
        f"{CACHES_PREFIX}{_key_part(scope, 'scope')}/{_key_part(cache_name, 'cache key')}"
    )


def artifact_key(task_id: str, name: str, path: str) -> str:
    """The blob key of an artifact file: ``artifacts/<task id>/<name>/<path>``."""
    parts = (
        _key_part(task_id, "task id"),
        _key_part(name, "artifact name"),
        _key_part(path.removeprefix("./"), "artifact path"),
    )
    return validate_key(ARTIFACTS_PREFIX + "/".join(parts))


def artifact_task_id(key: str) -> str | None:
    """The task id of an artifact blob key, or None for any other key."""
    if not key.startswith(ARTIFACTS_PREFIX):
        return None
    task_id, _, rest = key.removeprefix(ARTIFACTS_PREFIX).partition("/")
    return task_id if task_id and rest else None
