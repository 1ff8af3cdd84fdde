"""Artifacts, JUnit results and the cache index on SQLite: ``domain.artifacts.ArtifactStore``.

It shares the ``SqliteStore``'s connection (and its database thread): get it with
``SqliteStore.artifacts()``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from adapters.storage import artifact_rows as rows
from adapters.storage.sqlite_connection import SqliteConnection
from adapters.storage.stored_records import row_key
from domain.artifacts import ArtifactRecord, CacheEntry, TestResults, merge_results

_SQL = {"p": "?", "greatest": "MAX", "lock": ""}


def _sql(template: str) -> str:
    return template.format(**_SQL)


class SqliteArtifacts:
    """``ArtifactStore`` on the ``artifacts``, ``task_tests`` and ``caches`` tables."""

    def __init__(self, connection: SqliteConnection) -> None:
        self._db = connection

    async def commit_artifacts(
        self, task_id: str, artifacts: Sequence[ArtifactRecord], tests: TestResults | None
    ) -> None:
        """Record (or replace) the files; merge ``tests`` into the task's results."""
        key = row_key(task_id)
        if key is None:
            return

        def commit(db: sqlite3.Connection) -> None:
            for record in artifacts:
                db.execute(_sql(rows.UPSERT_ARTIFACT), rows.artifact_parameters(key, record))
            if tests is not None:
                db.execute(_sql(rows.INSERT_NO_TESTS), (key,))
                row = db.execute(_sql(rows.SELECT_TESTS), (key,)).fetchone()
                merged = merge_results(rows.tests_from_row(row), tests)
                db.execute(_sql(rows.UPDATE_TESTS), rows.tests_parameters(key, merged))

        await self._db.write(commit)

    async def list_artifacts(self, task_id: str) -> list[ArtifactRecord]:
        """A task's committed artifact files, by name and path."""
        key = row_key(task_id)
        if key is None:
            return []
        return await self._db.read(
            lambda db: [
                rows.artifact_from_row(row)
                for row in db.execute(_sql(rows.SELECT_ARTIFACTS), (key,))
            ]
        )

    async def get_artifact(self, task_id: str, name: str, path: str) -> ArtifactRecord | None:
        """One committed file, or None."""
        key = row_key(task_id)
        if key is None:
            return None

        def get(db: sqlite3.Connection) -> ArtifactRecord | None:
            row = db.execute(_sql(rows.SELECT_ARTIFACT), (key, name, path)).fetchone()
            return None if row is None else rows.artifact_from_row(row)

        return await self._db.read(get)

    async def test_results(self, task_id: str) -> TestResults | None:
        """A task's merged JUnit results, or None when it has no JUnit artifact."""
        key = row_key(task_id)
        if key is None:
            return None

        def get(db: sqlite3.Connection) -> TestResults | None:
            row = db.execute(_sql(rows.SELECT_TESTS), (key,)).fetchone()
            return None if row is None else rows.tests_from_row(row)

        return await self._db.read(get)

    async def is_committed(self, key: str) -> bool:
        """Whether the artifact blob ``key`` belongs to a committed artifact."""
        return await self._db.read(
            lambda db: db.execute(_sql(rows.SELECT_COMMITTED), (key,)).fetchone() is not None
        )

    async def cache_seen(self, entry: CacheEntry) -> None:
        """Record a cache found in the blob store (an existing row keeps its last use)."""
        await self._db.write(
            lambda db: db.execute(_sql(rows.UPSERT_CACHE), rows.cache_parameters(entry))
        )

    async def cache_used(self, scope: str, key: str, when: float) -> None:
        """Record that a cache was handed out for download at ``when``."""
        await self._db.write(lambda db: db.execute(_sql(rows.TOUCH_CACHE), (when, scope, key)))

    async def repository_caches(self, repository: str) -> list[CacheEntry]:
        """Every recorded cache of a repository, its PR scopes included."""
        return await self._db.read(
            lambda db: [
                rows.cache_from_row(row)
                for row in db.execute(_sql(rows.SELECT_REPOSITORY_CACHES), (repository,))
            ]
        )

    async def forget_cache(self, scope: str, key: str) -> None:
        """Drop a cache's row (its blob is gone)."""
        await self._db.write(lambda db: db.execute(_sql(rows.DELETE_CACHE), (scope, key)))
