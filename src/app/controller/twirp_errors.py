"""Twirp error answers of the controller (codes and statuses: ``domain.twirp_status``)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from domain.twirp_status import http_status_of, twirp_error_body


class TwirpError(Exception):
    """A Twirp error answer: ``code`` (see ``TWIRP_HTTP_STATUS``) and a message for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def twirp_error_response(code: str, message: str) -> JSONResponse:
    """Return the Twirp error body with the HTTP status of ``code``."""
    return JSONResponse(twirp_error_body(code, message), status_code=http_status_of(code))
