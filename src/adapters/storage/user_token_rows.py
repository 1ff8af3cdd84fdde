"""User tokens as rows of ``user_tokens``, shared by the SQLite and PostgreSQL stores.

Only a token's SHA-256 is stored (``domain.store.hash_token``); ``{p}`` is the driver's
parameter placeholder.
"""

from __future__ import annotations

from adapters.storage.stored_records import Row
from domain.store import StoreError
from domain.tokens import Role, UserToken

INSERT_TOKEN = (
    "INSERT INTO user_tokens (name, role, token_hash, created_at) VALUES ({p}, {p}, {p}, {p}) "
    "RETURNING id, name, role, created_at"
)
SELECT_ROLE = "SELECT role FROM user_tokens WHERE token_hash = {p}"
SELECT_BY_HASH = "SELECT id, name, role, created_at FROM user_tokens WHERE token_hash = {p}"
SELECT_ALL = "SELECT id, name, role, created_at FROM user_tokens ORDER BY id"


def stored_role(text: str) -> Role:
    """Return a stored role (``StoreError`` for one this program does not know)."""
    try:
        return Role(text)
    except ValueError:
        raise StoreError(f"stored token role {text!r} is unknown") from None


def token_from_row(row: Row) -> UserToken:
    """Return the user token a row of ``INSERT_TOKEN`` or ``SELECT_ALL`` holds."""
    return UserToken(
        id=str(row["id"]),
        name=row["name"],
        role=stored_role(row["role"]),
        created_at=float(row["created_at"]),
    )
