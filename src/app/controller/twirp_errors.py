"""Twirp error answers: the codes this controller uses and their HTTP statuses."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from starlette.responses import JSONResponse

TWIRP_STATUS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "bad_route": 404,
        "malformed": 400,
        "invalid_argument": 400,
        "unauthenticated": 401,
        "permission_denied": 403,
        "not_found": 404,
        "already_exists": 409,
        "resource_exhausted": 429,
        "failed_precondition": 412,
        "internal": 500,
        "unavailable": 503,
        "deadline_exceeded": 504,
        "unimplemented": 501,
    }
)


class TwirpError(Exception):
    """A Twirp error answer: ``code`` (see ``TWIRP_STATUS``) and a message for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def twirp_error_response(code: str, message: str) -> JSONResponse:
    """Return the Twirp error body with the HTTP status of ``code``."""
    return JSONResponse({"code": code, "msg": message}, status_code=TWIRP_STATUS.get(code, 500))
