"""The port of a forge's API (GitHub's REST API, Gitea's copy of it): the calls the controller
makes to build from webhooks and crons and to post commit statuses, and their errors.

``adapters.forge.client.ForgeClient`` implements it over HTTP; the composition root gives the
use cases a ``ForgeClientFactory`` that makes one per repository and token. Errors form one tree
rooted at ``ForgeError``::

    ForgeError                 the forge answered something unusable, or a 4xx
    +-- ForgeUnavailable       no answer, or a 5xx: worth retrying
        +-- ForgeRateLimited   a rate limit: retry at ``retry_at`` (Retry-After, X-RateLimit-Reset)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Self

from domain.errors import CirrusError
from domain.forge_store import StatusPost
from domain.repositories import Repository


class ForgeError(CirrusError):
    """A forge call failed; ``str()`` says which call and why."""


class ForgeUnavailable(ForgeError):
    """The forge did not answer, or answered with a server error: try again later."""


class ForgeRateLimited(ForgeUnavailable):
    """The forge refused because of its rate limit, until ``retry_at`` (epoch seconds)."""

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class ForgeClient(Protocol):
    """One repository host's API with one token; an async context manager that closes it.

    Every call raises ``ForgeError`` (or a subclass) when it fails.
    """

    @property
    def pause_until(self) -> float | None:
        """After a call, when the rate limit's remaining calls are used up: its reset time."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *_exc: object) -> None: ...

    async def file_at(self, repository: str, path: str, ref: str) -> str | None:
        """Return the text of ``path`` at ``ref`` (None when there is no such file)."""
        ...

    async def branch_head(self, repository: str, branch: str) -> str:
        """Return the commit a branch points at."""
        ...

    async def compare_files(self, repository: str, base: str, head: str) -> tuple[str, ...] | None:
        """Return the files changed from ``base`` to ``head`` (None when the forge cannot say)."""
        ...

    async def pull_files(self, repository: str, number: int) -> tuple[str, ...] | None:
        """Return the files a pull request changes (None when the forge cannot say)."""
        ...

    async def permission(self, repository: str, user: str) -> str:
        """Return ``user``'s permission on the repository (admin, write, read or none)."""
        ...

    async def post_status(self, post: StatusPost) -> None:
        """Post a commit status."""
        ...


ForgeClientFactory = Callable[[Repository, str], ForgeClient]
"""Makes the client of a repository's forge from the repository and its (decrypted) token."""
