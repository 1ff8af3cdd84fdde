"""The cache calls of ``CirrusCIService``: ``CacheInfo``, ``GenerateCacheDownloadURLs`` and
``GenerateCacheUploadURL``.

Caches are blobs under ``caches/<scope>/<key>``; the bytes go straight to and from the blob store
through short-lived URLs. A task's scopes come from its build (``domain.artifacts.cache_scopes``):
a pull request build writes its own ``<repository>/pull/<n>`` scope only and reads it first, then
the repository's, so it never overwrites the base branch's caches. The database's cache index
follows the blob store (an upload ends without telling the controller): each call brings the
repository's index up to date, deletes entries over ``max-entry-bytes`` and then the least
recently used until the repository fits in ``max-repository-bytes``. Handing out a download URL
counts as a use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.controller.twirp_errors import TwirpError
from domain.artifacts import (
    ArtifactStore,
    CacheEntry,
    CacheLimits,
    CacheScopes,
    cache_scopes,
    eviction_victims,
)
from domain.blobs import CACHES_PREFIX, BlobInfo, BlobStore, InvalidBlobKey, cache_key
from domain.errors import ConfigError
from domain.ports import Clock
from domain.protocol import (
    CacheInfo,
    CacheInfoRequest,
    CacheInfoResponse,
    CacheKey,
    DownloadUrls,
    UploadUrl,
)
from domain.store import BuildStore, TaskAssignment

log = logging.getLogger("cirrus.controller")

URL_SECONDS = 3600.0
"""How long a cache or artifact URL stays valid."""
PULL = "pull/"


def _blob_key(scope: str, key: str) -> str:
    try:
        return cache_key(scope, key)
    except InvalidBlobKey as error:
        raise TwirpError("invalid_argument", f"cache key {key!r}: {error}") from None


def _split(repository: str, blob_key: str) -> tuple[str, str] | None:
    """The scope and cache key of a blob under ``caches/<repository>/``."""
    rest = blob_key.removeprefix(f"{CACHES_PREFIX}{repository}/")
    if rest.startswith(PULL):
        number, _, key = rest.removeprefix(PULL).partition("/")
        if number.isdecimal() and key:
            return f"{repository}/pull/{number}", key
    return (repository, rest) if rest else None


class CacheService:
    """Answers the three cache calls for authenticated tasks."""

    def __init__(
        self,
        blobs: BlobStore,
        index: ArtifactStore,
        store: BuildStore,
        clock: Clock,
        limits: CacheLimits | None = None,
    ) -> None:
        self._blobs = blobs
        self._index = index
        self._store = store
        self._clock = clock
        self.limits = limits or CacheLimits()

    async def _scopes(self, task: TaskAssignment) -> CacheScopes:
        # The build's environment, not the task's: a task must not pick another scope.
        return cache_scopes(await self._store.build_environment(task.build_id) or {})

    async def cache_info(self, task: TaskAssignment, request: CacheInfoRequest) -> object:
        """``CacheInfo``: the exact key in the read scopes, else the newest by prefix."""
        scopes = await self._scopes(task)
        entries = await self.enforce(scopes.repository)
        found = await self._find(scopes, request)
        if found is None:
            raise TwirpError("not_found", "no cache with that key or prefix")
        scope, key, info = found
        creator = next(
            (e.created_by_task_id for e in entries if (e.scope, e.key) == (scope, key)), ""
        )
        return CacheInfoResponse(
            info=CacheInfo(
                key=key,
                size_in_bytes=info.size,
                creation_timestamp=int(info.created_at),
                created_by_task_id=creator,
            )
        )

    async def _find(
        self, scopes: CacheScopes, request: CacheInfoRequest
    ) -> tuple[str, str, BlobInfo] | None:
        if request.cache_key:
            for scope in scopes.read:
                info = await self._blobs.stat(_blob_key(scope, request.cache_key))
                if info is not None and info.size <= self.limits.max_entry_bytes:
                    return scope, request.cache_key, info
        for prefix in (p for p in request.cache_key_prefixes if p):
            for scope in scopes.read:
                newest = await self._newest(scope, prefix)
                if newest is not None:
                    return scope, newest[0], newest[1]
        return None

    async def _newest(self, scope: str, prefix: str) -> tuple[str, BlobInfo] | None:
        base = _blob_key(scope, prefix).removesuffix(prefix)
        best: tuple[str, BlobInfo] | None = None
        async for info in self._blobs.list(base + prefix):
            key = info.key.removeprefix(base)
            if key.startswith(PULL) or info.size > self.limits.max_entry_bytes:
                continue  # another (PR) scope under this one, or too large to serve
            if best is None or info.created_at > best[1].created_at:
                best = key, info
        return best

    async def download_urls(self, task: TaskAssignment, request: CacheKey) -> object:
        """``GenerateCacheDownloadURLs``: a URL of the key in the first read scope holding it."""
        for scope in (await self._scopes(task)).read:
            key = _blob_key(scope, request.cache_key)
            if await self._blobs.stat(key) is not None:
                await self._index.cache_used(scope, request.cache_key, self._clock.now())
                url = await self._blobs.download_url(key, URL_SECONDS)
                return DownloadUrls(urls=(url.url,))
        raise TwirpError("not_found", f"no cache {request.cache_key!r}")

    async def upload_url(self, task: TaskAssignment, request: CacheKey) -> object:
        """``GenerateCacheUploadURL``: a URL in the task's write scope (never the base scope
        of a pull request build)."""
        scopes = await self._scopes(task)
        key = _blob_key(scopes.write, request.cache_key)
        await self.enforce(scopes.repository)
        now = self._clock.now()
        # A row before the blob: it remembers the uploading task (size 0 counts for nothing).
        await self._index.cache_seen(
            CacheEntry(scopes.write, request.cache_key, 0, now, now, created_by_task_id=task.id)
        )
        url = await self._blobs.upload_url(key, URL_SECONDS)
        return UploadUrl(url=url.url, headers=url.headers)

    async def enforce(self, repository: str) -> list[CacheEntry]:
        """Bring a repository's index up to date with the blob store, then evict what is over
        the limits; return the caches that remain."""
        rows = {(e.scope, e.key): e for e in await self._index.repository_caches(repository)}
        present: list[CacheEntry] = []
        async for info in self._blobs.list(f"{CACHES_PREFIX}{repository}/"):
            place = _split(repository, info.key)
            if place is None:
                continue
            row = rows.pop(place, None)
            entry = CacheEntry(
                place[0],
                place[1],
                info.size,
                info.created_at,
                max(info.created_at, row.last_used_at if row is not None else 0.0),
                row.created_by_task_id if row is not None else "",
            )
            if row is None or (row.size, row.created_at) != (info.size, info.created_at):
                await self._index.cache_seen(entry)
            present.append(entry)
        now = self._clock.now()
        for (scope, key), row in rows.items():
            # A row without a blob: an upload still under way (its URL is valid), or gone.
            if now - row.last_used_at > URL_SECONDS:
                await self._index.forget_cache(scope, key)
        victims = eviction_victims(present, self.limits)
        for victim in victims:
            await self._blobs.delete(cache_key(victim.scope, victim.key))
            await self._index.forget_cache(victim.scope, victim.key)
            log.info(
                "cache %s of scope %s evicted (%d bytes; limits: %d per cache, %d per repository)",
                victim.key,
                victim.scope,
                victim.size,
                self.limits.max_entry_bytes,
                self.limits.max_repository_bytes,
            )
        return [e for e in present if e not in victims]


CACHES_SECTION = "caches"
_LIMIT_KEYS = {"max-entry-bytes": "max_entry_bytes", "max-repository-bytes": "max_repository_bytes"}


def parse_cache_limits(section: object) -> CacheLimits:
    """Check the controller file's ``caches:`` value; errors name ``caches.<key>``."""
    if section is None:
        return CacheLimits()
    if not isinstance(section, Mapping):
        raise ConfigError(CACHES_SECTION, f"must be a mapping of {', '.join(_LIMIT_KEYS)}")
    values: dict[str, int] = {}
    for key, value in section.items():
        if key not in _LIMIT_KEYS:
            raise ConfigError(
                f"{CACHES_SECTION}.{key}", f"unknown key (known: {', '.join(_LIMIT_KEYS)})"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{CACHES_SECTION}.{key}", f"must be a whole number of bytes from 1, not {value!r}"
            )
        values[_LIMIT_KEYS[str(key)]] = value
    return CacheLimits(**values)
