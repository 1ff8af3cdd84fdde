"""Errors of the Twirp JSON adapter: malformed messages and unknown routes.

Both derive from ``domain.errors.CirrusError``. The client turns a malformed *response* into a
``DefiniteControllerError``; a server turns a malformed *request* into a Twirp
``invalid_argument`` and an unknown route into ``bad_route``.
"""

from __future__ import annotations

from domain.errors import CirrusError


class ProtocolDecodeError(CirrusError):
    """A JSON message does not follow the proto3 JSON mapping; ``field`` is the offending path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class ProtocolEncodeError(CirrusError):
    """A domain value cannot be written as the proto message (for example two oneof members)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class UnknownMethodError(CirrusError):
    """No Twirp route with that service and method exists (Twirp code ``bad_route``)."""

    def __init__(self, service: str, method: str) -> None:
        super().__init__(f"no such method: {service}/{method}")
        self.service = service
        self.method = method
