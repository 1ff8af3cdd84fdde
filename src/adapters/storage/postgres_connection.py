"""A pool of PostgreSQL connections with read and write transactions and error translation.

Reads run in ``REPEATABLE READ, READ ONLY`` transactions: several statements (a build, its
tasks, their results) see one snapshot, and such a transaction never fails to serialise. Writes
run in ``READ COMMITTED`` transactions whose guards are single ``UPDATE … WHERE <guard>``
statements: PostgreSQL re-checks the guard on the newest row version after waiting for a
concurrent writer, so of several claimers (in any process) exactly one sees its guard hold.
Rows a write must read before changing are locked first (``FOR UPDATE``/``FOR NO KEY UPDATE``).

While the server is away (stopped, restarting, unreachable) an operation fails within a few
seconds with ``StoreError`` (callers answer 503 ``unavailable``, which workers retry) instead of
waiting the whole checkout timeout for a connection the pool cannot make: a checkout that waited
``REACHABLE_CHECK_SECONDS`` asks, with one short connection attempt, whether the server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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

REACHABLE_CHECK_SECONDS = 2.0
"""After this long without a connection, an operation checks whether the server answers."""

PROBE_TIMEOUT_SECONDS = 2
"""How long that check waits to connect (``connect_timeout`` is whole seconds)."""

PROBE_REUSE_SECONDS = 1.0
"""Operations waiting together share one check: a busy pool must not open one per waiter."""

RECONNECT_TIMEOUT_SECONDS = 10.0
"""How long the pool retries a lost connection (backing off) before it gives up on it and
connects again on demand: kept short so that the pool is back soon after the server is."""

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


def _dropped(connection: Connection) -> bool:
    """Return whether an idle connection is closed or the server has hung up on it."""
    if connection.closed or connection.broken:
        return True
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    # An idle connection of the pool expects nothing: readable means an error and EOF.
    return bool(readable)


class _BrokenRead(Exception):
    """A one-statement read failed because its connection broke: it may run again."""


class PostgresDatabase:
    """An open pool on one PostgreSQL database; every call borrows one connection."""

    def __init__(self, pool: AsyncConnectionPool[Connection], url: str = "") -> None:
        self._pool: AsyncConnectionPool[Connection] | None = pool
        self._url = url
        self._where = describe_url(url) if url else "PostgreSQL"
        self._probe_lock = asyncio.Lock()
        self._probed_at = -math.inf
        self._probe_failure: str | None = None

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
            # No check on every checkout (a round trip per operation): ``_checkout`` notices
            # a connection the server dropped without one (see there).
            timeout=CHECKOUT_TIMEOUT_SECONDS,
            reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
            name="cirrus-store",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as error:
            await pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {where}: {error}") from error
        return cls(pool, url)

    async def _checkout(
        self, begin: str | None
    ) -> tuple[AsyncConnectionPool[Connection], Connection]:
        """Borrow a live connection (on which ``begin``, if given, succeeded).

        A connection the server closed (a restart, an idle timeout) is told apart without a
        round trip: an idle connection has nothing to read unless the server said goodbye.
        One that dies anyway fails ``begin`` as broken; nothing ran on it yet, so another one
        is tried, up to the pool's size + 1.
        """
        pool = self._pool
        if pool is None:
            raise StoreError("the store is closed")
        for _ in range(pool.max_size + 1):
            connection = await self._getconn(pool)
            if _dropped(connection):
                await connection.close()
                await pool.putconn(connection)  # the pool discards a closed connection
                continue
            if begin is None:
                return pool, connection
            try:
                await connection.execute(begin)
            except psycopg.OperationalError:
                broken = connection.broken or connection.closed
                await pool.putconn(connection)  # the pool discards a broken connection
                if broken:
                    continue
                raise
            except BaseException:
                await pool.putconn(connection)
                raise
            return pool, connection
        raise StoreError("every connection to PostgreSQL failed; is the server running?")

    async def _getconn(self, pool: AsyncConnectionPool[Connection]) -> Connection:
        """Borrow a connection; fail fast when the server does not answer at all.

        A busy pool (every connection lent) is waited for up to ``CHECKOUT_TIMEOUT_SECONDS``;
        a pool that has none because the server is away is not.
        """
        try:
            return await pool.getconn(timeout=REACHABLE_CHECK_SECONDS)
        except PoolTimeout:
            pass
        await self._check_reachable()
        try:
            return await pool.getconn(timeout=CHECKOUT_TIMEOUT_SECONDS - REACHABLE_CHECK_SECONDS)
        except PoolTimeout as error:
            raise StoreError(
                f"no free connection to PostgreSQL at {self._where} "
                f"after {CHECKOUT_TIMEOUT_SECONDS:.0f} s"
            ) from error

    async def _check_reachable(self) -> None:
        """Raise ``StoreError`` unless a new connection to the server succeeded just now."""
        if not self._url:
            return
        async with self._probe_lock:
            if time.monotonic() - self._probed_at > PROBE_REUSE_SECONDS:
                self._probe_failure = await self._probe()
                self._probed_at = time.monotonic()
            failure = self._probe_failure
        if failure is not None:
            raise StoreError(f"PostgreSQL at {self._where} is unreachable: {failure}")

    async def _probe(self) -> str | None:
        """Connect once, outside the pool; return why that failed, or ``None``."""
        try:
            probe = await AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=PROBE_TIMEOUT_SECONDS
            )
        except psycopg.Error as error:
            return str(error).strip()
        await probe.close()
        return None

    @contextlib.asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[Connection]:
        pool, connection = await self._checkout(begin)
        try:
            try:
                yield connection
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
        finally:
            await pool.putconn(connection)

    async def _one_statement(
        self, function: Callable[[Connection], Awaitable[T]], *, read_only: bool
    ) -> T:
        pool, connection = await self._checkout(None)
        try:
            return await function(connection)
        except psycopg.OperationalError:
            if read_only and (connection.broken or connection.closed):
                raise _BrokenRead from None
            raise
        finally:
            await pool.putconn(connection)

    async def read_statement(self, function: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``function``, which runs exactly one statement, outside a transaction block.

        One statement is its own transaction (one snapshot), so this is ``read`` in one round
        trip instead of three. A connection that broke under it is replaced once.
        """
        try:
            try:
                return await self._one_statement(function, read_only=True)
            except _BrokenRead:
                return await self._one_statement(function, read_only=False)
        except psycopg.Error as error:
            raise StoreError(f"database error: {error}") from error

    async def write_statement(self, function: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``function``, which runs exactly one statement, outside a transaction block.

        The statement is atomic by itself, so this is ``write`` in one round trip instead of
        three; run again if it lost a deadlock, never after a connection broke under it (it
        may have been applied).
        """
        return await _retried(lambda: self._one_statement(function, read_only=False))

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

        async def attempt() -> T:
            async with self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED") as connection:
                return await function(connection)

        return await _retried(attempt)

    async def aclose(self) -> None:
        """Close every connection of the pool; idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def _retried(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` up to ``WRITE_ATTEMPTS`` times while it loses a deadlock or a
    serialization race (the server rolled it back, so running it again is safe); translate
    database errors to ``StoreError``."""
    for number in range(1, WRITE_ATTEMPTS + 1):
        try:
            return await attempt()
        except _RETRIED as error:
            if number == WRITE_ATTEMPTS:
                raise StoreError(f"database error: {error}") from error
        except psycopg.Error as error:
            raise StoreError(f"database error: {error}") from error
    raise AssertionError("unreachable: the last attempt returns or raises")
