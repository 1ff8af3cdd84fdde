"""Versioned schema migrations, whatever the database: the steps, their order, newer refused.

A store's database holds one ``schema_version`` row per applied migration; its version is the
highest. Opening one at the current version changes nothing, an older one is brought up to
date, a newer one is refused: this program does not know what the newer schema means. The
SQLite and PostgreSQL stores keep the same version numbers, each with its own dialect of every
migration (``sqlite_migrations``, ``postgres_migrations``).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.store import SchemaVersionError


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: its version (1, 2, …), what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


TASK_STATUSES_V1 = "'CREATED','SCHEDULED','EXECUTING','COMPLETED','FAILED','ABORTED','SKIPPED'"
"""The task statuses version 1 of the schema allows, as an SQL list (frozen with that version)."""


def latest_version(migrations: tuple[Migration, ...]) -> int:
    """Return the version a fully migrated database has."""
    return migrations[-1].version if migrations else 0


def check_order(migrations: tuple[Migration, ...]) -> None:
    """Raise ``ValueError`` unless the versions are 1, 2, … in order."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, … in order, got {versions}")


def refuse_newer(before: int, latest: int) -> None:
    """Raise ``SchemaVersionError`` if the database's version is newer than this program's."""
    if before > latest:
        raise SchemaVersionError(
            f"the database has schema version {before}, newer than the {latest} this program "
            "knows; use a newer cirrus or another database"
        )
