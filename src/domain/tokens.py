"""User tokens and their roles: who may read, who may operate builds, who administers.

The controller's admin token is the ``admin`` role. User tokens are made with ``cirrus token
create --role ...`` and kept as their SHA-256 only (``domain.store.hash_token``); the same token
opens the JSON API and the web interface with the same role.

=========  ==================================================================================
Role       May
=========  ==================================================================================
viewer     read builds, tasks, logs, workers and the queue
operator   what a viewer may, and submit, cancel, re-run and trigger builds and tasks, pause
           and resume workers
admin      everything: user tokens, repositories, secrets
=========  ==================================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from domain.errors import CirrusError

TOKEN_NAME_MAX = 100
"""Longest name a user token may have."""


class Role(enum.StrEnum):
    """What a token may do; each role may do everything the roles before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Return the role's place in ``viewer < operator < admin``."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Return whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class TokenRequestError(CirrusError):
    """A user token cannot be made as asked (an unknown role, a bad name)."""


def parse_role(text: str) -> Role:
    """Return the role named ``text`` (``TokenRequestError`` naming the choices otherwise)."""
    try:
        return Role(text)
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise TokenRequestError(f"unknown role {text!r}: choose one of {choices}") from None


def check_token_name(name: str) -> str:
    """Return ``name`` if a token may have it (printable, at most ``TOKEN_NAME_MAX`` long)."""
    if len(name) > TOKEN_NAME_MAX:
        raise TokenRequestError(f"a token name has at most {TOKEN_NAME_MAX} characters")
    if not name.isprintable():
        raise TokenRequestError("a token name must not hold control characters")
    return name


def refusal_message(needed: Role, held: Role) -> str:
    """Return the message of a request a role may not make (a 403)."""
    return f"this needs the {needed.value} role; the token has the {held.value} role"


@dataclass(frozen=True, slots=True)
class UserToken:
    """A stored user token, without the token: what ``GET /api/v1/tokens`` lists."""

    id: str
    name: str
    role: Role
    created_at: float


class UserTokenStore(Protocol):
    """Where user tokens are kept (their hashes only)."""

    async def add_user_token(self, name: str, role: Role, token_hash: str) -> UserToken:
        """Store a new token's hash with its name and role; return the stored token."""
        ...

    async def role_of_token(self, token_hash: str) -> Role | None:
        """Return the role of the token with this hash (``None`` if there is none)."""
        ...

    async def token_of_hash(self, token_hash: str) -> UserToken | None:
        """Return the token with this hash, without it (``None`` if there is none)."""
        ...

    async def list_user_tokens(self) -> list[UserToken]:
        """Return every user token, oldest first."""
        ...


@runtime_checkable
class HasUserTokens(Protocol):
    """A controller store that keeps user tokens on its own database."""

    def user_tokens(self) -> UserTokenStore:
        """Return the user tokens on this store's database."""
        ...
