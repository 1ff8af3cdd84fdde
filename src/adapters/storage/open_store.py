"""Opening the controller's store named by ``--database`` (CLI.md): SQLite or PostgreSQL.

Accepted URLs: ``sqlite:///PATH`` (as in SQLAlchemy, ``sqlite:///data.db`` is relative to the
working directory and ``sqlite:////var/data.db`` absolute), ``sqlite:///:memory:`` and
``postgresql://user:pass@host:port/db`` (also ``postgres://``, with libpq's query parameters
such as ``?sslmode=require``). A URL that is none of these is a ``ConfigError`` of
``--database``; a database that cannot be opened raises ``StoreError``. Messages never repeat a
password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from adapters.storage.postgres_store import PostgresStore
from adapters.storage.private_files import prepare_private_database
from adapters.storage.sqlite_store import SqliteStore
from domain.errors import ConfigError
from domain.ports import Clock
from domain.store import ControllerStore

DATABASE_KEY = "--database"
"""The flag every error of a database URL names."""

SQLITE_PREFIX = "sqlite:///"
MEMORY = ":memory:"
POSTGRES_SCHEMES = ("postgresql", "postgres")

_ACCEPTED = "sqlite:///PATH, sqlite:///:memory: or postgresql://user:pass@host:port/db"
_PASSWORD = re.compile(r"(://[^:/?#@]*:)[^/?#]*@")
"""The password of a URL's user part; greedy up to the last ``@``, as a password may hold one."""
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


class DatabaseKind(Enum):
    """Which store a URL opens."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A checked ``--database`` URL: the SQLite file (or ``:memory:``), or the PostgreSQL URL."""

    kind: DatabaseKind
    target: str


def redact(url: str) -> str:
    """Return ``url`` with its password (user part or ``password=`` parameter) as ``***``."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


def _refuse(url: str, why: str) -> ConfigError:
    return ConfigError(DATABASE_KEY, f"{redact(url)!r} {why} (accepted: {_ACCEPTED})")


def parse_database_url(url: str) -> DatabaseUrl:
    """Check a ``--database`` URL and say what it opens; ``ConfigError`` if it is unusable."""
    if url.startswith(SQLITE_PREFIX):
        path = url[len(SQLITE_PREFIX) :]
        if not path:
            raise _refuse(url, "names no file")
        return DatabaseUrl(DatabaseKind.SQLITE, path)
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme.lower() not in POSTGRES_SCHEMES:
        if scheme.lower() == "sqlite":
            raise _refuse(url, "needs three slashes before the path")
        if scheme.lower().startswith("postgres"):
            raise _refuse(url, "names a driver; give the plain postgresql:// URL")
        raise _refuse(url, "is not a database URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # reading it checks it: a bad port raises ValueError
    except ValueError as error:
        raise _refuse(url, f"is malformed: {error}") from None
    if not parts.path.strip("/"):
        raise _refuse(url, "names no database")
    try:
        conninfo_to_dict(url)
    except psycopg.Error as error:
        raise _refuse(url, f"is not a valid PostgreSQL URL: {redact(str(error).strip())}") from None
    return DatabaseUrl(DatabaseKind.POSTGRESQL, url)


async def open_store(url: str, clock: Clock) -> ControllerStore:
    """Open (creating and migrating if needed) the store a ``--database`` URL names."""
    database = parse_database_url(url)
    if database.kind is DatabaseKind.POSTGRESQL:
        return await PostgresStore.open(database.target, clock)
    if database.target != MEMORY:
        try:
            prepare_private_database(Path(database.target))
        except OSError as error:
            raise ConfigError(DATABASE_KEY, f"cannot create {database.target}: {error}") from None
    return await SqliteStore.open(database.target, clock)
