"""Repositories registered with the controller, and what a task of one gets from the registry.

A registered repository names a forge repository (``owner/name``), the forge's API, the URL its
code is cloned from, and two credentials kept as ``ENCRYPTED[...]`` texts of the controller's
secret cipher: the forge token (read the code, post statuses) and the webhook secret. Names
compare case-insensitively, as forges and the secret cipher treat ``Owner/Repo`` and
``owner/repo`` as one repository.

A task whose build names a registered repository (``CIRRUS_REPO_FULL_NAME``) gets that
repository's token as ``CIRRUS_REPO_CLONE_TOKEN`` in its ``InitialCommands`` answer, and its
clone URL when the build's source gives none (``task_repository_environment``). Nothing here
encrypts, decrypts or stores: the controller does, through ``RepositoryStore``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from domain.errors import CirrusError

CLONE_TOKEN_VARIABLE = "CIRRUS_REPO_CLONE_TOKEN"
"""The per-task clone token; only the controller sets it, at ``InitialCommands``."""

CLONE_TOKEN_REFUSED = (
    "environment: CIRRUS_REPO_CLONE_TOKEN is set by the controller, from the repository "
    "registered with `cirrus repo add`; a build cannot bring its own"
)
"""Why a build submitted with ``CIRRUS_REPO_CLONE_TOKEN`` is refused: its environment is stored
in clear, and a token must only be kept encrypted."""

CLONE_URL_VARIABLE = "CIRRUS_REPO_CLONE_URL"
REPOSITORY_VARIABLE = "CIRRUS_REPO_FULL_NAME"
SNAPSHOT_VARIABLE = "CIRRUS_SNAPSHOT"

GITHUB_API_URL = "https://api.github.com"
"""The public GitHub's API; its repositories are cloned from ``https://github.com``."""

GITHUB_WEB_URL = "https://github.com"

_NAME_PART = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_URL = re.compile(r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.\[\]:_-]+)(?P<path>/[^?#\s]*)?")
# The API path a forge serves under its web root: GitHub Enterprise ``/api/v3``, Gitea and
# Forgejo ``/api/v1`` (also when the forge itself lives under a sub-path).
_API_SUFFIX = re.compile(r"/api(/v[0-9]+)?/*$")


class RepositoryError(CirrusError):
    """A repository name, forge or URL is unusable; ``str()`` names it and says why."""


class Forge(Enum):
    """The forges a repository may live on (Gitea also stands for Forgejo)."""

    GITHUB = "github"
    GITEA = "gitea"


def parse_forge(text: str) -> Forge:
    """Return the forge named ``text`` (``github`` or ``gitea``), or raise ``RepositoryError``."""
    try:
        return Forge(text.strip().lower())
    except ValueError:
        known = ", ".join(forge.value for forge in Forge)
        raise RepositoryError(f"unknown forge {text!r} (known: {known})") from None


def check_repository_name(name: str) -> str:
    """Return ``name`` trimmed if it is ``OWNER/NAME``, else raise ``RepositoryError``."""
    trimmed = name.strip()
    parts = trimmed.split("/")
    if len(parts) != 2 or not all(_NAME_PART.fullmatch(part) for part in parts):
        raise RepositoryError(
            f"repository {name!r} is not OWNER/NAME (letters, digits, '-', '_' and '.')"
        )
    if any(part in {".", ".."} for part in parts):
        raise RepositoryError(f"repository {name!r} is not OWNER/NAME ('.' and '..' are paths)")
    return trimmed


def repository_key(name: str) -> str:
    """Return the form repositories are looked up by: ``OWNER/NAME`` case-folded."""
    return name.strip().casefold()


def check_url(url: str, what: str) -> str:
    """Return an ``http(s)://host[:port][/path]`` URL without its trailing ``/``, or raise
    ``RepositoryError`` naming ``what`` (user names, queries and fragments are refused: a
    credential belongs in the token, never in a URL)."""
    text = url.strip()
    if _URL.fullmatch(text) is None:
        raise RepositoryError(
            f"{what}: {url!r} is not an http:// or https:// URL without user, query or fragment"
        )
    return text.rstrip("/")


def default_clone_url(forge: Forge, api_url: str, name: str) -> str:
    """Return where a repository is cloned from when no clone URL is given.

    The public GitHub API (``https://api.github.com``) clones from ``https://github.com``; any
    other API URL is the forge's web root followed by its API path (``/api/v3`` of GitHub
    Enterprise, ``/api/v1`` of Gitea and Forgejo, or ``/api``), and the clone URL is that
    web root with ``/OWNER/NAME.git``.
    """
    checked = check_url(api_url, "--url")
    if forge is Forge.GITHUB and checked.lower() == GITHUB_API_URL:
        return f"{GITHUB_WEB_URL}/{name}.git"
    match = _URL.fullmatch(checked)
    assert match is not None  # check_url matched it
    root = _API_SUFFIX.sub("", match.group("path") or "")
    return f"{match.group('scheme')}://{match.group('host')}{root}/{name}.git"


@dataclass(frozen=True, slots=True)
class Repository:
    """A registered repository; the credentials are ``ENCRYPTED[...]`` texts bound to it."""

    name: str  # OWNER/NAME as last registered
    forge: Forge
    api_url: str
    clone_url: str
    encrypted_token: str
    encrypted_webhook_secret: str
    default_branch: str = ""  # "" until known
    created_at: float = 0.0  # seconds since the epoch; set by the store
    updated_at: float = 0.0

    @property
    def key(self) -> str:
        """The case-folded name it is stored and looked up by."""
        return repository_key(self.name)


@dataclass(frozen=True, slots=True)
class SavedRepository:
    """What saving a repository did: the stored record, and whether it was new."""

    repository: Repository
    created: bool


class RepositoryStore(Protocol):
    """The controller's registry of repositories (a port: SQLite, PostgreSQL, in memory)."""

    async def save_repository(
        self, repository: Repository, *, replace_webhook_secret: bool
    ) -> SavedRepository:
        """Insert ``repository``, or update the one with its key (case-insensitive name).

        An update keeps the stored ``created_at``, the stored webhook secret unless
        ``replace_webhook_secret``, and the stored default branch unless a new one is given.
        """
        ...

    async def get_repository(self, name: str) -> Repository | None:
        """Return the repository named ``name`` (any case), or None."""
        ...

    async def list_repositories(self) -> list[Repository]:
        """Return every repository, by key."""
        ...


@runtime_checkable
class HasRepositories(Protocol):
    """A controller store that also keeps the registry of repositories in its database."""

    def repositories(self) -> RepositoryStore:
        """Return the registry on this store's database (and connection)."""
        ...


def task_repository_environment(
    environment: Mapping[str, str], repository: Repository | None, token: str
) -> dict[str, str]:
    """Return the variables a task gets from its build's registered repository.

    ``environment`` is the task's environment before; ``token`` the repository's plain token.
    The token always wins over a value the configuration set (only the controller hands it
    out); the clone URL is added only when the task has no source of its own (neither a clone
    URL nor a snapshot).
    """
    if repository is None:
        return {}
    added: dict[str, str] = {}
    has_source = environment.get(CLONE_URL_VARIABLE) or environment.get(SNAPSHOT_VARIABLE)
    if repository.clone_url and not has_source:
        added[CLONE_URL_VARIABLE] = repository.clone_url
    if token:
        added[CLONE_TOKEN_VARIABLE] = token
    return added
