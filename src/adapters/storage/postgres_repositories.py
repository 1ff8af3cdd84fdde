"""The registry of repositories on PostgreSQL: ``domain.repositories.RepositoryStore``.

It shares the ``PostgresStore``'s pool: get it with ``PostgresStore.repositories()``. Two
controllers adding one repository at once are safe: the second ``INSERT ... ON CONFLICT DO
NOTHING`` waits for the first to commit, then updates its row.
"""

from __future__ import annotations

from psycopg.rows import dict_row

from adapters.storage.postgres_connection import Connection, PostgresDatabase
from adapters.storage.repository_rows import (
    INSERT_NEW,
    SELECT_ALL,
    SELECT_ONE,
    UPDATE_EXISTING,
    insert_parameters,
    repository_from_row,
    update_parameters,
)
from domain.ports import Clock
from domain.repositories import Repository, SavedRepository, repository_key
from domain.store import StoreError

_P = "%s"


class PostgresRepositories:
    """``RepositoryStore`` on the ``repositories`` table of a PostgreSQL store's database."""

    def __init__(self, database: PostgresDatabase, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    async def save_repository(
        self, repository: Repository, *, replace_webhook_secret: bool
    ) -> SavedRepository:
        """Insert ``repository`` or update the one with its key (see ``RepositoryStore``)."""
        now = self._clock.now()

        async def save(db: Connection) -> SavedRepository:
            cursor = await db.execute(INSERT_NEW.format(p=_P), insert_parameters(repository, now))
            inserted = cursor.rowcount == 1
            if not inserted:
                await db.execute(
                    UPDATE_EXISTING.format(p=_P),
                    update_parameters(
                        repository, now, replace_webhook_secret=replace_webhook_secret
                    ),
                )
            found = await _one(db, repository.key)
            if found is None:
                raise StoreError(f"repository {repository.name} vanished while it was saved")
            return SavedRepository(found, created=inserted)

        return await self._db.write(save)

    async def get_repository(self, name: str) -> Repository | None:
        """Return the repository named ``name`` (any case), or None."""
        key = repository_key(name)
        return await self._db.read_statement(lambda db: _one(db, key))

    async def list_repositories(self) -> list[Repository]:
        """Return every repository, by key."""

        async def every(db: Connection) -> list[Repository]:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_ALL)
            return [repository_from_row(row) for row in await cursor.fetchall()]

        return await self._db.read_statement(every)


async def _one(db: Connection, key: str) -> Repository | None:
    cursor = db.cursor(row_factory=dict_row)
    await cursor.execute(SELECT_ONE.format(p=_P), (key,))
    row = await cursor.fetchone()
    return None if row is None else repository_from_row(row)
