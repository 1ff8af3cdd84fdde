"""``/api/v1/repositories``: register repositories with the controller and list them.

``POST`` (admin) takes ``{"name", "forge", "url", "token", "cloneUrl"?, "webhookSecret"?}`` and
answers ``201`` for a new repository, ``200`` for an update of one registered under that name
(any case), with the repository as ``GET`` shows it plus ``"created"``, and
``"webhookSecret"`` only when the controller generated one just now: that is the one time
anybody sees it. A re-registration without ``webhookSecret`` keeps the stored secret, so that
the webhook configured at the forge keeps working.

The token and the webhook secret are stored as ``ENCRYPTED[...]`` texts of the controller's
cipher, bound to the repository; no answer and no log line carries either.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.controller.api import api_timestamp
from app.controller.api_guard import refusal
from app.controller.auth import ApiAccess, TokenHash
from app.controller.request_body import BodyError, parse_json, read_capped
from domain.repositories import (
    Repository,
    RepositoryError,
    RepositoryStore,
    check_repository_name,
    check_url,
    default_clone_url,
    parse_forge,
)
from domain.secret_sealing import SecretSealer, SecretValueError
from domain.store import StoreError
from domain.tokens import Role

BODY_LIMIT = 256 * 1024
"""The largest body: a token is at most 64 KiB of UTF-8, up to six times that in JSON."""

WEBHOOK_SECRET_BYTES = 32
"""Random bytes of a generated webhook secret (printed as 64 hex digits)."""


class RepositoryRegistration(pydantic.BaseModel):
    """Body of ``POST /api/v1/repositories``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str
    forge: str
    url: str
    token: str
    clone_url: str | None = pydantic.Field(default=None, alias="cloneUrl")
    webhook_secret: str | None = pydantic.Field(default=None, alias="webhookSecret")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def repository_json(repository: Repository) -> dict[str, Any]:
    """Return a repository as the API shows it: never a credential."""
    document: dict[str, Any] = {
        "name": repository.name,
        "forge": repository.forge.value,
        "url": repository.api_url,
        "cloneUrl": repository.clone_url,
    }
    if repository.default_branch:
        document["defaultBranch"] = repository.default_branch
    document["createdAt"] = api_timestamp(repository.created_at)
    document["updatedAt"] = api_timestamp(repository.updated_at)
    return document


def _registered(body: RepositoryRegistration, cipher: SecretSealer, webhook: str) -> Repository:
    """Return the checked repository of a registration, credentials encrypted; raises
    ``RepositoryError`` naming the field at fault."""
    name = check_repository_name(body.name)
    forge = parse_forge(body.forge)
    api_url = check_url(body.url, "url")
    clone_url = (
        check_url(body.clone_url, "cloneUrl")
        if body.clone_url
        else default_clone_url(forge, api_url, name)
    )
    sealed: dict[str, str] = {}
    for field, value in (("token", body.token), ("webhookSecret", webhook)):
        if not value.strip():
            raise RepositoryError(f"{field} must not be empty")
        try:
            sealed[field] = cipher.encrypt(value, name)
        except SecretValueError as error:
            raise RepositoryError(f"{field}: {error}") from None
    return Repository(
        name=name,
        forge=forge,
        api_url=api_url,
        clone_url=clone_url,
        encrypted_token=sealed["token"],
        encrypted_webhook_secret=sealed["webhookSecret"],
    )


class RepositoriesApi:
    """The two endpoints; ``routes()`` mounts them behind the admin token."""

    def __init__(
        self,
        repositories: RepositoryStore,
        cipher: SecretSealer,
        admin_token: TokenHash,
        *,
        access: ApiAccess | None = None,
    ) -> None:
        self._repositories = repositories
        self._cipher = cipher
        # Admins only: the admin token, or a user token with the admin role.
        self._access = access or ApiAccess(admin_token)

    def routes(self) -> list[Route]:
        """Return ``POST`` and ``GET /api/v1/repositories``."""
        return [
            Route("/api/v1/repositories", self._guarded_add, methods=["POST"]),
            Route("/api/v1/repositories", self._guarded_list, methods=["GET"]),
        ]

    async def _guarded_add(self, request: Request) -> Response:
        return await self._guarded(request, self.add)

    async def _guarded_list(self, request: Request) -> Response:
        return await self._guarded(request, self.list_all)

    async def _guarded(
        self, request: Request, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # The same guard as every /api/v1 call of ``ControllerApi``.
        try:
            refused = await refusal(self._access, request, Role.ADMIN)
            if refused is not None:
                return refused
            return await endpoint(request)
        except StoreError:
            return _error(503, "the controller's database failed")

    async def add(self, request: Request) -> Response:
        """``POST /api/v1/repositories``: register a repository or update its registration."""
        try:
            body = RepositoryRegistration.model_validate(
                parse_json(await read_capped(request, BODY_LIMIT))
            )
        except BodyError as error:
            return _error(error.status, error.message)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return _error(400, f"invalid request body: {where}: {first['msg']}")
        # A candidate secret: stored only if the repository is new (or none was given and the
        # store keeps the old one), so that two registrations at once cannot both print one.
        generated = None if body.webhook_secret is not None else new_webhook_secret()
        webhook = body.webhook_secret if body.webhook_secret is not None else generated
        assert webhook is not None  # one of the two is set
        try:
            repository = _registered(body, self._cipher, webhook)
        except RepositoryError as error:
            return _error(400, str(error))
        saved = await self._repositories.save_repository(
            repository, replace_webhook_secret=generated is None
        )
        document = {**repository_json(saved.repository), "created": saved.created}
        if saved.created and generated is not None:
            document["webhookSecret"] = generated
        return JSONResponse(document, status_code=201 if saved.created else 200)

    async def list_all(self, _request: Request) -> Response:
        """``GET /api/v1/repositories``: every repository, by name, without credentials."""
        found = await self._repositories.list_repositories()
        return JSONResponse({"repositories": [repository_json(r) for r in found]})


def new_webhook_secret() -> str:
    """Return a new random webhook secret (hex, so that any forge's form takes it)."""
    return secrets.token_hex(WEBHOOK_SECRET_BYTES)
