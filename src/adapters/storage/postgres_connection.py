"""A pool of PostgreSQL connections with read and write transactions and error translation.

Reads run in ``REPEATABLE READ, READ ONLY`` transactions: several statements (a build, its
tasks, their results) see one snapshot, and such a transaction never fails to serialise. Writes
run in ``READ COMMITTED`` transactions whose guards are single ``UPDATE … WHERE <guard>``
statements: PostgreSQL re-checks the guard on the newest row version after waiting for a
concurrent writer, so of several claimers (in any process) exactly one sees its guard hold.
Rows a write must read before changing are locked first (``FOR UPDATE``/``FOR NO KEY UPDATE``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres_migrations import POSTGRES_MIGRATIONS, migrate
from adapters.storage.schema_versions import Migration
from domain.store import StoreError

T = TypeVar("T")

Connection = AsyncConnection[TupleRow]
"""The connections the store's functions run on (autocommit; transactions are explicit)."""

CONNECT_TIMEOUT_SECONDS = 30
"""How long opening the store waits for the server."""

CHECKOUT_TIMEOUT_SECONDS = 60.0
"""How long an operation waits for a free connection of the pool."""

WRITE_ATTEMPTS = 5
"""How often a write that lost a deadlock (the server rolled it back) is run again."""

_RETRIED = (errors.DeadlockDetected, errors.SerializationFailure)


def describe_url(url: str) -> str:
    """Return ``host:port/db`` of a connection URL, never its password (for messages)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "an unreadable PostgreSQL URL"
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    port = str(parts.get("port") or 5432)
    database = str(parts.get("dbname") or parts.get("user") or "")
    return f"{host}:{port}/{database}"


class PostgresDatabase:
    """An open pool on one PostgreSQL database; every call borrows one connection."""

    def __init__(self, pool: AsyncConnectionPool[Connection]) -> None:
        self._pool: AsyncConnectionPool[Connection] | None = pool

    @classmethod
    async def open(
        cls,
        url: str,
        now: float,
        migrations: tuple[Migration, ...] = POSTGRES_MIGRATIONS,
        max_connections: int = 10,
    ) -> PostgresDatabase:
        """Connect, migrate the schema, then open a pool of up to ``max_connections``."""
        where = describe_url(url)
        try:
            # One plain connection first: a refused login or an unknown database fails here
            # with the server's own message (a pool would only time out).
            connection = await AsyncConnection.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error as error:
            raise StoreError(f"cannot connect to PostgreSQL at {where}: {error}") from error
        try:
            async with connection:
                await migrate(connection, now, migrations)
        except psycopg.Error as error:
            raise StoreError(f"cannot migrate the database at {where}: {error}") from error
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            # A connection the server dropped (restart, idle timeout) is replaced, not used.
            check=AsyncConnectionPool.check_connection,
            timeout=CHECKOUT_TIMEOUT_SECONDS,
            name="cirrus-store",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as error:
            await pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {where}: {error}") from error
        return cls(pool)

    @contextlib.asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[Connection]:
        pool = self._pool
        if pool is None:
            raise StoreError("the store is closed")
        async with pool.connection() as connection:
            await connection.execute(begin)
            try:
                yield connection
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    async def read(self, function: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``function`` in a read-only transaction on one snapshot."""
        try:
            async with self._transaction(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            ) as connection:
                return await function(connection)
        except psycopg.Error as error:
            raise StoreError(f"database error: {error}") from error

    async def write(self, function: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``function`` in a read-committed transaction, again if it lost a deadlock."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED") as connection:
                    return await function(connection)
            except _RETRIED as error:
                # The server rolled the whole transaction back, so running it again is safe.
                if attempt == WRITE_ATTEMPTS:
                    raise StoreError(f"database error: {error}") from error
            except psycopg.Error as error:
                raise StoreError(f"database error: {error}") from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def aclose(self) -> None:
        """Close every connection of the pool; idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
