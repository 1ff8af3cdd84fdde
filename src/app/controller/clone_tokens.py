"""What a task gets from its build's registered repository at ``InitialCommands``.

The clone token (``CIRRUS_REPO_CLONE_TOKEN``, also listed in ``secretsToMask``) and, when the
build's source gives none, the registered clone URL. The token is decrypted for the answer
alone: it is never written into the task's spec, the build's environment or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.cirrus_config.context import SecretError, SecretReader
from domain.repositories import RepositoryStore, task_repository_environment


@dataclass(frozen=True, slots=True)
class RepositoryGrant:
    """The variables a task gets from its registered repository, and the values to mask."""

    environment: dict[str, str]
    secrets_to_mask: tuple[str, ...]


NO_GRANT = RepositoryGrant({}, ())


class CloneTokens:
    """Hands each task the token of its build's registered repository, and nothing else's."""

    def __init__(self, repositories: RepositoryStore | None, secrets: SecretReader) -> None:
        self._repositories = repositories
        self._secrets = secrets

    async def grant(self, repository: str, environment: Mapping[str, str]) -> RepositoryGrant:
        """Return what a task of a build of ``repository`` (its ``CIRRUS_REPO_FULL_NAME``;
        "" for none) with ``environment`` gets; ``SecretError`` if the token cannot be
        decrypted (another controller's key)."""
        if not repository or self._repositories is None:
            return NO_GRANT
        registered = await self._repositories.get_repository(repository)
        if registered is None:
            return NO_GRANT
        try:
            token = self._secrets.decrypt(registered.encrypted_token, registered.name)
        except SecretError as error:
            raise SecretError(
                f"the clone token of repository {registered.name} cannot be used: {error}"
            ) from None
        added = task_repository_environment(environment, registered, token)
        return RepositoryGrant(added, (token,))
