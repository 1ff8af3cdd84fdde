"""Blob retention rules: how long artifacts, caches and orphans are kept, as pure functions.

Controller file key ``retention:`` with ``artifacts-days`` (default 30), ``caches-days``
(default 7), ``orphans-hours`` (default 1) and ``every-minutes`` (default 60). ``verdict``
decides for one blob; the controller's job (``app/controller/retention.py``) lists the store,
asks it, and deletes. The ports here are what that job needs from the outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from domain.blobs import ARTIFACTS_PREFIX, CACHES_PREFIX, BlobInfo
from domain.build import TaskStatus
from domain.errors import ConfigError

SECTION = "retention"
DAY = 86400.0
HOUR = 3600.0
EXPIRED_ARTIFACT = "expired_artifact"
EXPIRED_CACHE = "expired_cache"
ORPHAN = "orphan"
PARTIAL_UPLOAD = "partial_upload"


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long blobs are kept, and how often the job looks."""

    artifacts_days: float = 30.0
    caches_days: float = 7.0
    orphans_hours: float = 1.0
    every_minutes: float = 60.0


_KEYS = {
    "artifacts-days": "artifacts_days",
    "caches-days": "caches_days",
    "orphans-hours": "orphans_hours",
    "every-minutes": "every_minutes",
}


def parse_retention(section: object) -> RetentionSettings:
    """Check the ``retention:`` value; errors are ``ConfigError``s naming ``retention.<key>``."""
    if section is None:
        return RetentionSettings()
    if not isinstance(section, Mapping):
        raise ConfigError(SECTION, f"must be a mapping of {', '.join(_KEYS)}")
    values: dict[str, float] = {}
    for key, value in section.items():
        if key not in _KEYS:
            raise ConfigError(f"{SECTION}.{key}", f"unknown key (known: {', '.join(_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{SECTION}.{key}", f"must be a positive number, not {value!r}")
        values[_KEYS[str(key)]] = float(value)
    return RetentionSettings(**values)


@runtime_checkable
class CommittedArtifacts(Protocol):
    """Knows which artifact blobs ``CommitUploadedArtifacts`` made visible."""

    async def is_committed(self, key: str) -> bool:
        """Whether the artifact blob ``key`` belongs to a committed artifact."""
        ...


class TaskState(Protocol):
    """What retention reads of a task (``TaskRecord`` has it)."""

    @property
    def status(self) -> TaskStatus:
        """The task's status."""
        ...


class TaskLookup(Protocol):
    """The part of ``ControllerStore`` retention needs."""

    async def get_task(self, task_id: str) -> TaskState | None:
        """Return a task, or None."""
        ...


@runtime_checkable
class RetentionMetrics(Protocol):
    """Counts what retention deleted."""

    def blobs_deleted(self, reason: str, count: int) -> None:
        """Count ``count`` blobs deleted for ``reason``."""
        ...


@runtime_checkable
class PartialUploads(Protocol):
    """A store that keeps uploads in progress aside and can collect abandoned ones."""

    async def collect_partial_uploads(self, older_than_seconds: float) -> int:
        """Remove uploads abandoned for that long; return how many."""
        ...


def verdict(
    info: BlobInfo, now: float, settings: RetentionSettings, *, committed: bool | None
) -> str | None:
    """Why the blob should go now (a reason), or None to keep it; the caller has already
    kept the artifacts of running tasks. ``committed`` None: unknown, so never an orphan."""
    age = now - info.created_at
    if info.key.startswith(CACHES_PREFIX):
        return EXPIRED_CACHE if age > settings.caches_days * DAY else None
    if not info.key.startswith(ARTIFACTS_PREFIX):
        return None
    if age > settings.artifacts_days * DAY:
        return EXPIRED_ARTIFACT
    if committed is False and age > settings.orphans_hours * HOUR:
        return ORPHAN
    return None
