"""User tokens on PostgreSQL: ``domain.tokens.UserTokenStore`` on the store's pool.

Get it with ``PostgresStore.user_tokens()``.
"""

from __future__ import annotations

from psycopg.rows import dict_row

from adapters.storage.postgres_connection import Connection, PostgresDatabase
from adapters.storage.user_token_rows import (
    INSERT_TOKEN,
    SELECT_ALL,
    SELECT_BY_HASH,
    SELECT_ROLE,
    stored_role,
    token_from_row,
)
from domain.ports import Clock
from domain.store import StoreError
from domain.tokens import Role, UserToken

_P = "%s"


class PostgresUserTokens:
    """``UserTokenStore`` on the ``user_tokens`` table of a PostgreSQL store's database."""

    def __init__(self, database: PostgresDatabase, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    async def add_user_token(self, name: str, role: Role, token_hash: str) -> UserToken:
        """Store a new token's hash with its name and role; return the stored token."""
        parameters = (name, role.value, token_hash, self._clock.now())

        async def add(db: Connection) -> UserToken:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(INSERT_TOKEN.format(p=_P), parameters)
            row = await cursor.fetchone()
            if row is None:
                raise StoreError("the new user token was not stored")
            return token_from_row(row)

        return await self._db.write_statement(add)

    async def role_of_token(self, token_hash: str) -> Role | None:
        """Return the role of the token with this hash (``None`` if there is none)."""

        async def read(db: Connection) -> Role | None:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_ROLE.format(p=_P), (token_hash,))
            row = await cursor.fetchone()
            return None if row is None else stored_role(row["role"])

        return await self._db.read_statement(read)

    async def token_of_hash(self, token_hash: str) -> UserToken | None:
        """Return the token with this hash, without it (``None`` if there is none)."""

        async def read(db: Connection) -> UserToken | None:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_BY_HASH.format(p=_P), (token_hash,))
            row = await cursor.fetchone()
            return None if row is None else token_from_row(row)

        return await self._db.read_statement(read)

    async def list_user_tokens(self) -> list[UserToken]:
        """Return every user token, oldest first."""

        async def every(db: Connection) -> list[UserToken]:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(SELECT_ALL)
            return [token_from_row(row) for row in await cursor.fetchall()]

        return await self._db.read_statement(every)
