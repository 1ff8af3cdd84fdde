"""Artifacts, JUnit results and the cache index on PostgreSQL: ``domain.artifacts.ArtifactStore``.

It shares the ``PostgresStore``'s pool: get it with ``PostgresStore.artifacts()``. Two commits of
one task's JUnit results at once merge both: the second waits on the first's row lock.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.rows import dict_row

from adapters.storage import artifact_rows as rows
from adapters.storage.postgres_connection import Connection, PostgresDatabase
from adapters.storage.stored_records import row_key
from domain.artifacts import ArtifactRecord, CacheEntry, TestResults, merge_results
from domain.store import StoreError

_SQL = {"p": "%s", "greatest": "GREATEST", "lock": " FOR UPDATE"}


def _sql(template: str) -> str:
    return template.format(**_SQL)


class PostgresArtifacts:
    """``ArtifactStore`` on the ``artifacts``, ``task_tests`` and ``caches`` tables."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = database

    async def commit_artifacts(
        self, task_id: str, artifacts: Sequence[ArtifactRecord], tests: TestResults | None
    ) -> None:
        """Record (or replace) the files; merge ``tests`` into the task's results."""
        key = row_key(task_id)
        if key is None:
            return

        async def commit(db: Connection) -> None:
            for record in artifacts:
                await db.execute(_sql(rows.UPSERT_ARTIFACT), rows.artifact_parameters(key, record))
            if tests is not None:
                await db.execute(_sql(rows.INSERT_NO_TESTS), (key,))
                cursor = db.cursor(row_factory=dict_row)
                await cursor.execute(_sql(rows.SELECT_TESTS), (key,))
                row = await cursor.fetchone()
                if row is None:
                    raise StoreError(f"task {task_id}'s test results vanished while merged")
                merged = merge_results(rows.tests_from_row(row), tests)
                await db.execute(_sql(rows.UPDATE_TESTS), rows.tests_parameters(key, merged))

        await self._db.write(commit)

    async def list_artifacts(self, task_id: str) -> list[ArtifactRecord]:
        """A task's committed artifact files, by name and path."""
        key = row_key(task_id)
        if key is None:
            return []

        async def every(db: Connection) -> list[ArtifactRecord]:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(_sql(rows.SELECT_ARTIFACTS), (key,))
            return [rows.artifact_from_row(row) for row in await cursor.fetchall()]

        return await self._db.read_statement(every)

    async def get_artifact(self, task_id: str, name: str, path: str) -> ArtifactRecord | None:
        """One committed file, or None."""
        key = row_key(task_id)
        if key is None:
            return None

        async def one(db: Connection) -> ArtifactRecord | None:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(_sql(rows.SELECT_ARTIFACT), (key, name, path))
            row = await cursor.fetchone()
            return None if row is None else rows.artifact_from_row(row)

        return await self._db.read_statement(one)

    async def test_results(self, task_id: str) -> TestResults | None:
        """A task's merged JUnit results, or None when it has no JUnit artifact."""
        key = row_key(task_id)
        if key is None:
            return None

        async def one(db: Connection) -> TestResults | None:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(rows.SELECT_TESTS.format(p="%s", lock=""), (key,))
            row = await cursor.fetchone()
            return None if row is None else rows.tests_from_row(row)

        return await self._db.read_statement(one)

    async def is_committed(self, key: str) -> bool:
        """Whether the artifact blob ``key`` belongs to a committed artifact."""

        async def one(db: Connection) -> bool:
            cursor = await db.execute(_sql(rows.SELECT_COMMITTED), (key,))
            return await cursor.fetchone() is not None

        return await self._db.read_statement(one)

    async def cache_seen(self, entry: CacheEntry) -> None:
        """Record a cache found in the blob store (an existing row keeps its last use)."""

        async def upsert(db: Connection) -> None:
            await db.execute(_sql(rows.UPSERT_CACHE), rows.cache_parameters(entry))

        await self._db.write_statement(upsert)

    async def cache_used(self, scope: str, key: str, when: float) -> None:
        """Record that a cache was handed out for download at ``when``."""

        async def touch(db: Connection) -> None:
            await db.execute(_sql(rows.TOUCH_CACHE), (when, scope, key))

        await self._db.write_statement(touch)

    async def repository_caches(self, repository: str) -> list[CacheEntry]:
        """Every recorded cache of a repository, its PR scopes included."""

        async def every(db: Connection) -> list[CacheEntry]:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(_sql(rows.SELECT_REPOSITORY_CACHES), (repository,))
            return [rows.cache_from_row(row) for row in await cursor.fetchall()]

        return await self._db.read_statement(every)

    async def forget_cache(self, scope: str, key: str) -> None:
        """Drop a cache's row (its blob is gone)."""

        async def delete(db: Connection) -> None:
            await db.execute(_sql(rows.DELETE_CACHE), (scope, key))

        await self._db.write_statement(delete)
