"""``POST /api/v1/secrets/encrypt``: turn a plain value into an ``ENCRYPTED[...]`` text.

Body ``{"value": "...", "repository": "owner/name"}`` (``repository`` optional: without it the
value is usable by every repository and by builds without one); answer
``200 {"encrypted": "ENCRYPTED[v1:...]"}``. The admin token guards it like every ``/api/v1``
call (``ControllerApi`` mounts it); the plain value is never logged nor stored.
"""

from __future__ import annotations

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.controller.request_body import BodyError, parse_json, read_capped
from domain.secret_sealing import SecretSealer, SecretValueError

BODY_LIMIT = 256 * 1024
"""The largest body: a value is at most 64 KiB of UTF-8, up to six times that in JSON."""


class SecretEncryption(pydantic.BaseModel):
    """Body of ``POST /api/v1/secrets/encrypt``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    value: str
    repository: str | None = None


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def encrypt_secret(request: Request, cipher: SecretSealer) -> Response:
    """Answer one ``POST /api/v1/secrets/encrypt``."""
    try:
        body = SecretEncryption.model_validate(parse_json(await read_capped(request, BODY_LIMIT)))
    except BodyError as error:
        return _error(error.message, error.status)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return _error(f"invalid request body: {where}: {first['msg']}")
    try:
        encrypted = cipher.encrypt(body.value, body.repository or "")
    except SecretValueError as error:
        return _error(str(error))
    return JSONResponse({"encrypted": encrypted})
