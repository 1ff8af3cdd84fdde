"""``ControllerStore.list_builds`` for both stores: pages of builds, newest first, filtered.

A build's status is derived from its tasks (``BuildRecord.status``), not stored, so the status
filter is applied to loaded builds: pages are read until ``limit`` builds passed it or there are
no older builds. Repository, branch and ``before`` are filtered by the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from adapters.storage.stored_records import row_key
from domain.build import TaskStatus
from domain.store import MAX_LIST_LIMIT, BuildRecord

PAGE_SIZE = 100
"""Builds read at once while a status filter drops some."""

Page = Callable[[int | None, int], Awaitable[list[BuildRecord]]]
"""Reads up to n builds older than a key (``None``: the newest), newest first."""


async def list_builds(
    page: Page, status: TaskStatus | None, limit: int, before: str
) -> list[BuildRecord]:
    """Return up to ``limit`` builds of ``page`` older than build ``before`` with ``status``."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}, got {limit}")
    cursor: int | None = None
    if before:
        cursor = row_key(before)
        if cursor is None:
            return []  # no build has such an id, so none is older than it
    found: list[BuildRecord] = []
    while len(found) < limit:
        wanted = limit - len(found) if status is None else PAGE_SIZE
        builds = await page(cursor, wanted)
        found.extend(build for build in builds if status is None or build.status is status)
        if len(builds) < wanted:
            break
        cursor = int(builds[-1].id)
    return found[:limit]
