"""The registry of repositories in memory: the ``RepositoryStore`` of stores without a table.

A controller app built on a store that keeps no ``repositories`` table (a test's store) gets
this one; it forgets everything when the process ends. Unit tests use it as the port's fake,
and the store contract runs against it next to SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses

from domain.ports import Clock
from domain.repositories import Repository, SavedRepository, repository_key


class MemoryRepositories:
    """``RepositoryStore`` in a dict keyed by the case-folded name."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._repositories: dict[str, Repository] = {}

    async def save_repository(
        self, repository: Repository, *, replace_webhook_secret: bool
    ) -> SavedRepository:
        """Insert ``repository`` or update the one with its key (see ``RepositoryStore``)."""
        now = self._clock.now()
        old = self._repositories.get(repository.key)
        if old is None:
            saved = dataclasses.replace(repository, created_at=now, updated_at=now)
        else:
            saved = dataclasses.replace(
                repository,
                encrypted_webhook_secret=(
                    repository.encrypted_webhook_secret
                    if replace_webhook_secret
                    else old.encrypted_webhook_secret
                ),
                default_branch=repository.default_branch or old.default_branch,
                created_at=old.created_at,
                updated_at=now,
            )
        self._repositories[repository.key] = saved
        return SavedRepository(saved, created=old is None)

    async def get_repository(self, name: str) -> Repository | None:
        """Return the repository named ``name`` (any case), or None."""
        return self._repositories.get(repository_key(name))

    async def list_repositories(self) -> list[Repository]:
        """Return every repository, by key."""
        return [self._repositories[key] for key in sorted(self._repositories)]
