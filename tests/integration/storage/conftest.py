"""Fixtures of the store contract tests: one ``store`` per backend, on a real database.

Every backend in ``BACKENDS`` (SQLite and PostgreSQL) runs the whole contract. A backend opens
stores on one database that lives for the test, so that tests can open a second store on the
same data (reopening, concurrent claimers). The PostgreSQL backend creates a scratch database on
a private cluster the session starts on first use (``tests.integration.postgres_server``) and
drops it in ``dispose``; no test is skipped, a missing PostgreSQL is an error. A backend must be
picklable: the multi-process tests send it to child processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from adapters.storage.sqlite_store import SqliteStore
from domain.store import ControllerStore
from tests.integration.postgres_server import shared_server, stop_shared_server
from tests.integration.storage.postgres_backend import PostgresBackend


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        """Return the current fake time."""
        return self.time

    def monotonic(self) -> float:
        """Return the current fake time."""
        return self.time

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.time += seconds


class StoreBackend(Protocol):
    """Opens stores on one database of one kind."""

    name: str

    async def open(self, clock: FakeClock) -> ControllerStore:
        """Open a new store (a new connection) on the backend's database."""
        ...

    async def dispose(self) -> None:
        """Drop the database after the test (stores are closed by then)."""
        ...


class SqliteBackend:
    """SQLite file in the test's temporary directory."""

    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.path = directory / "controller.db"

    async def open(self, clock: FakeClock) -> ControllerStore:
        """Open a new store on the file."""
        return await SqliteStore.open(self.path, clock)

    async def dispose(self) -> None:
        """Nothing to do: pytest removes the temporary directory."""


BACKENDS: dict[str, Callable[[Path], StoreBackend]] = {
    "sqlite": SqliteBackend,
    "postgresql": PostgresBackend,
}
"""Backends the contract runs against."""


@pytest.fixture(scope="session", autouse=True)
def postgres_cluster() -> Iterator[None]:
    """Stop the private PostgreSQL cluster (started by the first test that needs it) at the end."""
    yield
    stop_shared_server()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A scratch database on the session's private cluster, dropped after the test."""
    url = shared_server().create_database()
    try:
        yield url
    finally:
        shared_server().drop_database(url)


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    """The database the test runs against, disposed of after it."""
    created = BACKENDS[str(request.param)](tmp_path)
    try:
        yield created
    finally:
        await created.dispose()


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock every store of the test uses."""
    return FakeClock()


@pytest.fixture
async def store(backend: StoreBackend, clock: FakeClock) -> AsyncIterator[ControllerStore]:
    """A store on a fresh database, closed after the test."""
    opened = await backend.open(clock)
    try:
        yield opened
    finally:
        await opened.aclose()
