"""One SQLite connection driven from its own thread, with transactions and error translation.

sqlite3 blocks, so every statement runs on a single dedicated thread: the event loop never waits
on the database, and the connection is only ever used from the thread that created it. Writes
run in ``BEGIN IMMEDIATE`` transactions, which take the database's write lock up front, so that
a read-then-write inside one transaction is atomic also against other processes; readers see a
consistent snapshot (WAL mode lets them run while another connection writes).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from adapters.storage.schema_versions import Migration
from adapters.storage.sqlite_migrations import SQLITE_MIGRATIONS, migrate
from domain.store import StoreError

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a statement waits for another connection's write lock before failing."""


def _connect(path: str, now: float, migrations: tuple[Migration, ...]) -> sqlite3.Connection:
    # isolation_level=None: sqlite3 opens no implicit transactions; ours are explicit.
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        _enable_wal(connection)
        # NORMAL is durable against process crashes in WAL mode; only a power loss may lose
        # the last commits, which is acceptable for CI state and much faster.
        connection.execute("PRAGMA synchronous = NORMAL")
        # Overwrite what is deleted or replaced (tokens in clear of earlier versions, secrets)
        # instead of leaving it in free space of the file.
        connection.execute("PRAGMA secure_delete = ON")
        migrate(connection, now, migrations)
    except BaseException:
        connection.close()
        raise
    return connection


def _enable_wal(connection: sqlite3.Connection) -> None:
    # WAL mode is stored in the file, so only the first opener switches; but that switch needs
    # the file to itself, and SQLite answers "database is locked" at once, without waiting for
    # the busy timeout, while another connection opens it. So retry until the timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() not in {"wal", "memory"}:
                connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)  # on the database thread, never on the event loop
        delay = min(delay * 2, 0.2)


class SqliteConnection:
    """A sqlite3 connection owned by one worker thread; every call runs there."""

    def __init__(self, executor: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        self._executor = executor
        self._connection: sqlite3.Connection | None = connection

    @classmethod
    async def open(
        cls, path: str, now: float, migrations: tuple[Migration, ...] = SQLITE_MIGRATIONS
    ) -> SqliteConnection:
        """Open (creating if needed) and migrate the database at ``path`` (or ``:memory:``)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(
                executor, _translated, lambda: _connect(path, now, migrations)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, connection)

    async def _run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connection
        if connection is None:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _translated, lambda: function(connection))

    async def read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``function`` in a read transaction (one consistent snapshot)."""
        return await self._run(lambda connection: _in_transaction(connection, "BEGIN", function))

    async def write(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``function`` in a write transaction holding the write lock from its start."""
        return await self._run(
            lambda connection: _in_transaction(connection, "BEGIN IMMEDIATE", function)
        )

    async def aclose(self) -> None:
        """Close the connection and let its thread end; idempotent."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, connection.close)
        finally:
            self._executor.shutdown(wait=False)


def _in_transaction(
    connection: sqlite3.Connection, begin: str, function: Callable[[sqlite3.Connection], T]
) -> T:
    connection.execute(begin)
    try:
        result = function(connection)
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


def _translated(function: Callable[[], T]) -> T:
    try:
        return function()
    except sqlite3.Error as error:
        raise StoreError(f"database error: {error}") from error
