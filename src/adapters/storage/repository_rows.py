"""What the SQLite and PostgreSQL registries of repositories share: their SQL and their rows.

The ``repositories`` table (schema version 6) has one row per repository, keyed by the
case-folded ``OWNER/NAME``. ``token`` and ``webhook_secret`` hold ``ENCRYPTED[...]`` texts of
the controller's cipher, never plain values. The statements take ``{p}`` for the dialect's
placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

from adapters.storage.stored_records import Row
from domain.repositories import Repository, RepositoryError, parse_forge
from domain.store import StoreError

COLUMNS = (
    "name, forge, api_url, clone_url, token, webhook_secret, default_branch, created_at, updated_at"
)

INSERT_NEW = (
    "INSERT INTO repositories (key, " + COLUMNS + ") "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (key) DO NOTHING"
)
"""Insert a repository unless its key exists (the row count says which)."""

UPDATE_EXISTING = (
    "UPDATE repositories SET name = {p}, forge = {p}, api_url = {p}, clone_url = {p}, "
    "token = {p}, "
    # An update keeps what the forge told (default branch) and, unless told otherwise, the
    # webhook secret already configured at the forge.
    "webhook_secret = CASE WHEN {p} THEN {p} ELSE webhook_secret END, "
    "default_branch = CASE WHEN {p} = '' THEN default_branch ELSE {p} END, "
    "updated_at = {p} WHERE key = {p}"
)

SELECT_ONE = "SELECT " + COLUMNS + " FROM repositories WHERE key = {p}"
SELECT_ALL = "SELECT " + COLUMNS + " FROM repositories ORDER BY key"


def insert_parameters(repository: Repository, now: float) -> tuple[object, ...]:
    """Return the parameters of ``INSERT_NEW``."""
    return (
        repository.key,
        repository.name,
        repository.forge.value,
        repository.api_url,
        repository.clone_url,
        repository.encrypted_token,
        repository.encrypted_webhook_secret,
        repository.default_branch,
        now,
        now,
    )


def update_parameters(
    repository: Repository, now: float, *, replace_webhook_secret: bool
) -> tuple[object, ...]:
    """Return the parameters of ``UPDATE_EXISTING``."""
    return (
        repository.name,
        repository.forge.value,
        repository.api_url,
        repository.clone_url,
        repository.encrypted_token,
        replace_webhook_secret,
        repository.encrypted_webhook_secret,
        repository.default_branch,
        repository.default_branch,
        now,
        repository.key,
    )


def repository_from_row(row: Row) -> Repository:
    """Return the repository a ``repositories`` row holds."""
    try:
        forge = parse_forge(str(row["forge"]))
    except RepositoryError as error:
        raise StoreError(f"stored repository {row['name']!r}: {error}") from None
    return Repository(
        name=str(row["name"]),
        forge=forge,
        api_url=str(row["api_url"]),
        clone_url=str(row["clone_url"]),
        encrypted_token=str(row["token"]),
        encrypted_webhook_secret=str(row["webhook_secret"]),
        default_branch=str(row["default_branch"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )
