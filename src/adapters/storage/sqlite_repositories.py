"""The registry of repositories on SQLite: ``domain.repositories.RepositoryStore``.

It shares the ``SqliteStore``'s connection (and its database thread): get it with
``SqliteStore.repositories()``.
"""

from __future__ import annotations

import sqlite3

from adapters.storage.repository_rows import (
    INSERT_NEW,
    SELECT_ALL,
    SELECT_ONE,
    UPDATE_EXISTING,
    insert_parameters,
    repository_from_row,
    update_parameters,
)
from adapters.storage.sqlite_connection import SqliteConnection
from domain.ports import Clock
from domain.repositories import Repository, SavedRepository, repository_key

_P = "?"


class SqliteRepositories:
    """``RepositoryStore`` on the ``repositories`` table of a SQLite store's database."""

    def __init__(self, connection: SqliteConnection, clock: Clock) -> None:
        self._db = connection
        self._clock = clock

    async def save_repository(
        self, repository: Repository, *, replace_webhook_secret: bool
    ) -> SavedRepository:
        """Insert ``repository`` or update the one with its key (see ``RepositoryStore``)."""
        now = self._clock.now()

        def save(db: sqlite3.Connection) -> SavedRepository:
            inserted = db.execute(
                INSERT_NEW.format(p=_P), insert_parameters(repository, now)
            ).rowcount
            if inserted != 1:
                db.execute(
                    UPDATE_EXISTING.format(p=_P),
                    update_parameters(
                        repository, now, replace_webhook_secret=replace_webhook_secret
                    ),
                )
            row = db.execute(SELECT_ONE.format(p=_P), (repository.key,)).fetchone()
            return SavedRepository(repository_from_row(row), created=inserted == 1)

        return await self._db.write(save)

    async def get_repository(self, name: str) -> Repository | None:
        """Return the repository named ``name`` (any case), or None."""
        key = repository_key(name)

        def get(db: sqlite3.Connection) -> Repository | None:
            row = db.execute(SELECT_ONE.format(p=_P), (key,)).fetchone()
            return None if row is None else repository_from_row(row)

        return await self._db.read(get)

    async def list_repositories(self) -> list[Repository]:
        """Return every repository, by key."""
        return await self._db.read(
            lambda db: [repository_from_row(row) for row in db.execute(SELECT_ALL)]
        )
