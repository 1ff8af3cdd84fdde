"""``/api/v1/tokens``: user tokens with roles (admins only).

``POST`` takes ``{"role": "viewer"|"operator"|"admin", "name"?}`` and answers ``201 {"id",
"name", "role", "createdAt", "token"}``: the token is shown this once and only its SHA-256 is
kept. ``GET`` answers ``{"tokens": [{"id", "name", "role", "createdAt"}]}``, never a token.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.controller.api_guard import guarded
from app.controller.auth import ApiAccess
from app.controller.request_body import BodyError, parse_json, read_capped
from domain.store import hash_token
from domain.tokens import (
    Role,
    TokenRequestError,
    UserToken,
    UserTokenStore,
    check_token_name,
    parse_role,
)

BODY_LIMIT = 4096
TOKEN_PREFIX = "cirrus_"
"""Starts every user token, so that secret scanners and people recognise one."""


class TokenRequest(pydantic.BaseModel):
    """Body of ``POST /api/v1/tokens``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    role: str
    name: str = ""


def new_user_token() -> str:
    """Return a fresh random user token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_json(token: UserToken) -> dict[str, Any]:
    """Return a user token as the API lists it (without the token)."""
    moment = datetime.datetime.fromtimestamp(token.created_at, tz=datetime.UTC)
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role.value,
        "createdAt": moment.isoformat().replace("+00:00", "Z"),
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class TokensApi:
    """The two token endpoints; ``routes()`` mounts them for admins."""

    def __init__(self, tokens: UserTokenStore, access: ApiAccess) -> None:
        self._tokens = tokens
        self._access = access

    def routes(self) -> list[Route]:
        """Return ``POST`` and ``GET /api/v1/tokens``."""
        return [
            Route(
                "/api/v1/tokens", guarded(self._access, Role.ADMIN, self.create), methods=["POST"]
            ),
            Route(
                "/api/v1/tokens", guarded(self._access, Role.ADMIN, self.list_all), methods=["GET"]
            ),
        ]

    async def create(self, request: Request) -> Response:
        """``POST /api/v1/tokens``: make a user token; the answer holds it, once."""
        try:
            body = TokenRequest.model_validate(parse_json(await read_capped(request, BODY_LIMIT)))
            role = parse_role(body.role)
            name = check_token_name(body.name.strip() or f"{role.value} token")
        except BodyError as error:
            return _error(error.status, error.message)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return _error(400, f"invalid request body: {where}: {first['msg']}")
        except TokenRequestError as error:
            return _error(400, str(error))
        token = new_user_token()
        stored = await self._tokens.add_user_token(name, role, hash_token(token))
        return JSONResponse({**token_json(stored), "token": token}, status_code=201)

    async def list_all(self, _request: Request) -> Response:
        """``GET /api/v1/tokens``: every user token, oldest first, without the tokens."""
        found = await self._tokens.list_user_tokens()
        return JSONResponse({"tokens": [token_json(token) for token in found]})
