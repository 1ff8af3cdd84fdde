"""The one table of Twirp error codes and their HTTP statuses (facts of the wire protocol),
used by the controller's answers and by the worker's client.

Errors are ``{"code", "msg"}`` bodies with the HTTP status of their code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# HTTP status of each Twirp error code: ``spec/PROTOCOL.md`` for the codes it lists (note
# ``deadline_exceeded`` is 504 there), the Twirp v7 specification for the others. Where codes
# share a status, the first one listed is what a bare status (a proxy's answer) stands for.
TWIRP_HTTP_STATUS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "canceled": 408,
        "internal": 500,
        "unknown": 500,
        "invalid_argument": 400,
        "malformed": 400,
        "out_of_range": 400,
        "deadline_exceeded": 504,
        "not_found": 404,
        "bad_route": 404,
        "already_exists": 409,
        "aborted": 409,
        "permission_denied": 403,
        "unauthenticated": 401,
        "resource_exhausted": 429,
        "failed_precondition": 412,
        "unimplemented": 501,
        "unavailable": 503,
        "dataloss": 500,
    }
)


def http_status_of(code: str) -> int:
    """Return the HTTP status of a Twirp error code (500 for a code Twirp does not define)."""
    return TWIRP_HTTP_STATUS.get(code, 500)


def code_of_http_status(status: int) -> str:
    """Return the Twirp code a bare HTTP error status stands for (an answer without Twirp body,
    from a proxy): the first code of ``TWIRP_HTTP_STATUS`` with that status, else ``unknown``."""
    if status == 502:  # a proxy's bad gateway: the controller behind it is away
        return "unavailable"
    return next((code for code, known in TWIRP_HTTP_STATUS.items() if known == status), "unknown")


def twirp_error_body(code: str, msg: str) -> dict[str, object]:
    """Return the JSON body of a Twirp error (what a server answers with its HTTP status)."""
    return {"code": code, "msg": msg}
