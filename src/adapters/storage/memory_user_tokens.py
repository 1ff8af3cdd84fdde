"""User tokens in memory: for a controller whose store keeps none (tests' fake stores)."""

from __future__ import annotations

from domain.ports import Clock
from domain.tokens import Role, UserToken


class MemoryUserTokens:
    """``UserTokenStore`` in a dictionary, for the life of one process."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[UserToken, str]] = {}

    async def add_user_token(self, name: str, role: Role, token_hash: str) -> UserToken:
        """Store a new token's hash with its name and role; return the stored token."""
        token = UserToken(str(len(self._tokens) + 1), name, role, self._clock.now())
        self._tokens[token.id] = (token, token_hash)
        return token

    async def role_of_token(self, token_hash: str) -> Role | None:
        """Return the role of the token with this hash (``None`` if there is none)."""
        roles = [token.role for token, stored in self._tokens.values() if stored == token_hash]
        return roles[0] if roles else None

    async def token_of_hash(self, token_hash: str) -> UserToken | None:
        """Return the token with this hash, without it (``None`` if there is none)."""
        found = [token for token, stored in self._tokens.values() if stored == token_hash]
        return found[0] if found else None

    async def list_user_tokens(self) -> list[UserToken]:
        """Return every user token, oldest first."""
        return [token for token, _ in self._tokens.values()]
