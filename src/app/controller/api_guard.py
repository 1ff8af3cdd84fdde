"""The role check of every ``/api/v1`` route: one guard, 401 without a known token, 403 naming
the role needed when the token's role is lower (``domain.tokens``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.controller.auth import ApiAccess
from domain.store import StoreError
from domain.tokens import Role, refusal_message

Endpoint = Callable[[Request], Awaitable[Response]]

UNAUTHORIZED_MESSAGE = "missing or wrong token (Bearer): the admin token or a user token"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def refusal(access: ApiAccess, request: Request, needed: Role) -> Response | None:
    """Return the answer refusing ``request`` if its token may not do what ``needed`` may,
    or ``None`` if it may."""
    role = await access.role_of_header(request.headers.get("authorization"))
    if role is None:
        response = _error(401, UNAUTHORIZED_MESSAGE)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if not role.allows(needed):
        return _error(403, refusal_message(needed, role))
    return None


def guarded(access: ApiAccess, needed: Role, endpoint: Endpoint) -> Endpoint:
    """Return ``endpoint`` behind the role check; a failing database answers 503."""

    async def guard(request: Request) -> Response:
        try:
            refused = await refusal(access, request, needed)
            if refused is not None:
                return refused
            return await endpoint(request)
        except StoreError:
            return _error(503, "the controller's database failed")

    return guard
