"""Committed artifacts, JUnit test results and the cache index of the controller.

An artifact file becomes an ``ArtifactRecord`` when ``CommitUploadedArtifacts`` finds its blob;
``format: junit`` files add ``TestResults`` to their task (several files merge). Caches live in
the blob store under ``caches/<scope>/<key>``; a ``CacheEntry`` is what the controller's database
remembers of one (size, last use) to keep each repository under its limits, evicting the least
recently used. Scopes follow Cirrus: a pull request build writes to ``<repository>/pull/<n>`` and
reads that scope first, then the repository's; it never writes the repository's scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MAX_FAILURES = 200
"""How many failing tests a task keeps (the counts stay exact beyond)."""
MAX_MESSAGE_CHARS = 1000
"""How long a failure message may be when stored."""
DEFAULT_MAX_ENTRY_BYTES = 5 * 1024**3
DEFAULT_MAX_REPOSITORY_BYTES = 20 * 1024**3
NO_REPOSITORY_SCOPE = "_"


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One committed artifact file of a task."""

    task_id: str
    name: str
    path: str
    size: int
    sha256: str
    type: str = ""
    format: str = ""
    blob_key: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TestFailure:
    """A failing (or erroring) test: ``classname.name`` and its message."""

    name: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class TestResults:
    """A task's test counts from its JUnit artifacts; ``notices`` says what could not be read."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: tuple[TestFailure, ...] = ()
    notices: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: ``12 passed, 1 failed (test_x), 0 skipped``."""
        failed = f"{self.failed} failed"
        if self.failures:
            names = ", ".join(f.name for f in self.failures[:3])
            more = ", ..." if len(self.failures) > 3 or self.failed > len(self.failures) else ""
            failed += f" ({names}{more})"
        text = f"{self.passed} passed, {failed}, {self.skipped} skipped"
        return text + ("; " + "; ".join(self.notices) if self.notices else "")


def merge_results(first: TestResults | None, second: TestResults) -> TestResults:
    """Add two files' (or commits') results; the failures list stays bounded."""
    if first is None:
        return second
    return TestResults(
        passed=first.passed + second.passed,
        failed=first.failed + second.failed,
        skipped=first.skipped + second.skipped,
        failures=(first.failures + second.failures)[:MAX_FAILURES],
        notices=first.notices + second.notices,
    )


def bounded_message(text: str) -> str:
    """A failure message as stored: stripped and at most ``MAX_MESSAGE_CHARS`` long."""
    text = text.strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


@dataclass(frozen=True, slots=True)
class CacheScopes:
    """Where a build's tasks write caches, and where they read them, in order."""

    repository: str
    write: str
    read: tuple[str, ...]


def cache_scopes(build_environment: Mapping[str, str]) -> CacheScopes:
    """The scopes of a build, from its ``CIRRUS_REPO_FULL_NAME`` and ``CIRRUS_PR``."""
    repository = build_environment.get("CIRRUS_REPO_FULL_NAME", "").strip().lower()
    repository = repository or NO_REPOSITORY_SCOPE
    pr = build_environment.get("CIRRUS_PR", "").strip()
    if not pr:
        return CacheScopes(repository, repository, (repository,))
    own = f"{repository}/pull/{pr}"
    return CacheScopes(repository, own, (own, repository))


def scope_repository(scope: str) -> str:
    """The repository a scope belongs to (a PR scope's ``<repository>/pull/<n>`` prefix cut)."""
    head, sep, tail = scope.rpartition("/pull/")
    return head if sep and tail.isdecimal() else scope


@dataclass(frozen=True, slots=True)
class CacheLimits:
    """The controller file's ``caches: {max-entry-bytes, max-repository-bytes}``."""

    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    max_repository_bytes: int = DEFAULT_MAX_REPOSITORY_BYTES


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cache the controller's database knows: its blob's scope, key and size, and last use."""

    scope: str
    key: str
    size: int
    created_at: float
    last_used_at: float
    created_by_task_id: str = ""

    @property
    def repository(self) -> str:
        """The repository whose total this cache counts in."""
        return scope_repository(self.scope)


def eviction_victims(entries: Sequence[CacheEntry], limits: CacheLimits) -> list[CacheEntry]:
    """The caches to delete: every entry over the per-entry limit, then the least recently
    used until the repository's total fits."""
    victims = [e for e in entries if e.size > limits.max_entry_bytes]
    kept = sorted(
        (e for e in entries if e.size <= limits.max_entry_bytes),
        key=lambda e: (e.last_used_at, e.created_at, e.scope, e.key),
    )
    total = sum(e.size for e in kept)
    for entry in kept:
        if total <= limits.max_repository_bytes:
            break
        victims.append(entry)
        total -= entry.size
    return victims


class TestReportParser(Protocol):
    """Reads a ``format: junit`` artifact file into ``TestResults``, in bounded memory; a file
    that is not JUnit XML gives empty counts and a notice naming it by ``label``."""

    def __call__(self, path: str, label: str) -> TestResults:
        """Return the results of the report file at ``path``."""
        ...


class ArtifactStore(Protocol):
    """Keeps committed artifacts and test results, and the cache index."""

    async def commit_artifacts(
        self, task_id: str, artifacts: Sequence[ArtifactRecord], tests: TestResults | None
    ) -> None:
        """Record (or replace) the files; merge ``tests`` into the task's results."""
        ...

    async def list_artifacts(self, task_id: str) -> list[ArtifactRecord]:
        """A task's committed artifact files, by name and path."""
        ...

    async def get_artifact(self, task_id: str, name: str, path: str) -> ArtifactRecord | None:
        """One committed file, or None."""
        ...

    async def test_results(self, task_id: str) -> TestResults | None:
        """A task's merged JUnit results, or None when it has no JUnit artifact."""
        ...

    async def is_committed(self, key: str) -> bool:
        """Whether the artifact blob ``key`` belongs to a committed artifact (retention)."""
        ...

    async def cache_seen(self, entry: CacheEntry) -> None:
        """Record a cache found in the blob store (an existing row keeps its last use)."""
        ...

    async def cache_used(self, scope: str, key: str, when: float) -> None:
        """Record that a cache was handed out for download at ``when``."""
        ...

    async def repository_caches(self, repository: str) -> list[CacheEntry]:
        """Every recorded cache of a repository, its PR scopes included."""
        ...

    async def forget_cache(self, scope: str, key: str) -> None:
        """Drop a cache's row (its blob is gone)."""
        ...


@runtime_checkable
class HasArtifacts(Protocol):
    """A controller store that also keeps artifacts and caches in its database."""

    def artifacts(self) -> ArtifactStore:
        """Return the artifact store on this store's database."""
        ...
