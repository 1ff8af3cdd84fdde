"""``open_store``: every ``--database`` URL form opens its store, every bad one names the flag."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from adapters.storage.open_store import (
    DatabaseKind,
    DatabaseUrl,
    open_store,
    parse_database_url,
    redact,
)
from adapters.storage.postgres_store import PostgresStore
from adapters.storage.sqlite_store import SqliteStore
from domain.errors import ConfigError
from domain.store import ControllerStore, StoreError
from tests.integration.postgres_server import shared_server
from tests.integration.storage.conftest import FakeClock

pytestmark = pytest.mark.integration

SECRET = "s3cret-pw"


async def _round_trip(store: ControllerStore) -> None:
    try:
        await store.set_setting("k", "v")
        assert await store.get_setting("k") == "v"
    finally:
        await store.aclose()


async def test_a_relative_sqlite_url_opens_a_file_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///state/controller.db", FakeClock())
    assert isinstance(store, SqliteStore)
    await _round_trip(store)
    assert (tmp_path / "state" / "controller.db").is_file()


async def test_an_absolute_sqlite_url_has_four_slashes_and_gets_its_directories(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a" / "b" / "controller.db"
    store = await open_store(f"sqlite:///{path}", FakeClock())
    await _round_trip(store)
    assert path.is_file()
    again = await open_store(f"sqlite:///{path}", FakeClock())
    try:
        assert await again.get_setting("k") == "v"
    finally:
        await again.aclose()


async def test_an_in_memory_sqlite_url_touches_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///:memory:", FakeClock())
    assert isinstance(store, SqliteStore)
    await _round_trip(store)
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_a_postgresql_url_opens_the_database_with_its_password(
    postgres_url: str, scheme: str
) -> None:
    url = scheme + postgres_url.removeprefix("postgresql")
    assert ":" in url.split("@")[0].removeprefix(f"{scheme}://")  # user:pass as in CLI.md
    store = await open_store(url, FakeClock())
    assert isinstance(store, PostgresStore)
    await _round_trip(store)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "is not a database URL"),
        ("controller.db", "is not a database URL"),
        ("mysql://u:p@h/db", "is not a database URL"),
        ("sqlite://", "three slashes"),
        ("sqlite://controller.db", "three slashes"),
        ("sqlite:///", "names no file"),
        ("postgresql+psycopg://u:p@h/db", "names a driver"),
        ("postgresql://u:p@h:99999/db", "malformed"),
        ("postgresql://u:p@h:port/db", "malformed"),
        ("postgresql://u:p@h:5432", "names no database"),
        ("postgresql://u:p@h:5432/", "names no database"),
        ("postgresql://u:p@h:5432/db?no_such_option=1", "not a valid PostgreSQL URL"),
    ],
)
async def test_a_bad_url_is_a_config_error_of_the_database_flag(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        await open_store(url, FakeClock())
    assert raised.value.key == "--database"
    assert why in raised.value.message
    assert "postgresql://user:pass@host:port/db" in raised.value.message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@h:99999/db",
        f"postgresql://u:{SECRET}@h/",
        f"postgresql://u:{SECRET}@h/db?no_such_option=1",
        f"postgresql://h/db?password={SECRET}&no_such_option=1",
        f"postgresql+psycopg://u:{SECRET}@h/db",
    ],
)
def test_a_refused_url_never_shows_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_database_url(url)
    assert SECRET not in str(raised.value)
    assert "***" in str(raised.value)


def test_redacting_keeps_everything_but_the_password() -> None:
    assert redact("postgresql://u:p@ss@h:1/db") == "postgresql://u:***@h:1/db"
    assert redact("postgresql://u@h/db?sslmode=require") == "postgresql://u@h/db?sslmode=require"
    assert redact("postgres://h/db?a=1&password=x&b=2") == "postgres://h/db?a=1&password=***&b=2"


def test_urls_say_which_store_they_open() -> None:
    assert parse_database_url("sqlite:///x/c.db") == DatabaseUrl(DatabaseKind.SQLITE, "x/c.db")
    assert parse_database_url("sqlite:////x/c.db") == DatabaseUrl(DatabaseKind.SQLITE, "/x/c.db")
    assert parse_database_url("sqlite:///:memory:") == DatabaseUrl(DatabaseKind.SQLITE, ":memory:")
    url = "postgresql://u:p@[::1]:5433/cirrus?sslmode=require"
    assert parse_database_url(url) == DatabaseUrl(DatabaseKind.POSTGRESQL, url)


async def test_a_sqlite_directory_that_cannot_be_created_is_a_config_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot create") as raised:
        await open_store(f"sqlite:///{tmp_path}/file/sub/c.db", FakeClock())
    assert raised.value.key == "--database"


async def test_an_unreachable_postgresql_server_is_a_store_error_without_the_password() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(
            StoreError, match=f"cannot connect to PostgreSQL at 127.0.0.1:{port}/db"
        ):
            await open_store(f"postgresql://u:{SECRET}@127.0.0.1:{port}/db", FakeClock())


async def test_a_wrong_postgresql_password_is_a_store_error_that_hides_both_passwords(
    postgres_url: str,
) -> None:
    server = shared_server()
    wrong = postgres_url.replace(server.password, SECRET)
    with pytest.raises(StoreError, match="password authentication failed") as raised:
        await open_store(wrong, FakeClock())
    assert SECRET not in str(raised.value)
    assert server.password not in str(raised.value)


async def test_an_unknown_postgresql_database_is_a_store_error(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match="no_such_database"):
        await open_store(missing, FakeClock())
