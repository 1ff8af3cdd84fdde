"""User tokens on SQLite: ``domain.tokens.UserTokenStore`` on the store's connection.

Get it with ``SqliteStore.user_tokens()``.
"""

from __future__ import annotations

import sqlite3

from adapters.storage.sqlite_connection import SqliteConnection
from adapters.storage.user_token_rows import (
    INSERT_TOKEN,
    SELECT_ALL,
    SELECT_BY_HASH,
    SELECT_ROLE,
    stored_role,
    token_from_row,
)
from domain.ports import Clock
from domain.tokens import Role, UserToken

_P = "?"


class SqliteUserTokens:
    """``UserTokenStore`` on the ``user_tokens`` table of a SQLite store's database."""

    def __init__(self, connection: SqliteConnection, clock: Clock) -> None:
        self._db = connection
        self._clock = clock

    async def add_user_token(self, name: str, role: Role, token_hash: str) -> UserToken:
        """Store a new token's hash with its name and role; return the stored token."""
        parameters = (name, role.value, token_hash, self._clock.now())

        def add(db: sqlite3.Connection) -> UserToken:
            return token_from_row(db.execute(INSERT_TOKEN.format(p=_P), parameters).fetchone())

        return await self._db.write(add)

    async def role_of_token(self, token_hash: str) -> Role | None:
        """Return the role of the token with this hash (``None`` if there is none)."""

        def read(db: sqlite3.Connection) -> Role | None:
            row = db.execute(SELECT_ROLE.format(p=_P), (token_hash,)).fetchone()
            return None if row is None else stored_role(row["role"])

        return await self._db.read(read)

    async def token_of_hash(self, token_hash: str) -> UserToken | None:
        """Return the token with this hash, without it (``None`` if there is none)."""

        def read(db: sqlite3.Connection) -> UserToken | None:
            row = db.execute(SELECT_BY_HASH.format(p=_P), (token_hash,)).fetchone()
            return None if row is None else token_from_row(row)

        return await self._db.read(read)

    async def list_user_tokens(self) -> list[UserToken]:
        """Return every user token, oldest first."""
        return await self._db.read(
            lambda db: [token_from_row(row) for row in db.execute(SELECT_ALL)]
        )
