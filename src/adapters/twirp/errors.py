"""Errors of the Twirp JSON adapter (malformed messages, unknown routes) and the one table of
Twirp error codes and their HTTP statuses, used by the controller's answers and the client.

Both are facts of the wire protocol and live in the domain (``domain.wire_protocol``,
``domain.twirp_status``), where the controller's services catch them; this module names them
for the adapter's modules. The client turns a malformed *response* into a
``DefiniteControllerError``; a server turns a malformed *request* into a Twirp
``invalid_argument`` and an unknown route into ``bad_route``.
"""

from __future__ import annotations

from domain.twirp_status import (
    TWIRP_HTTP_STATUS,
    code_of_http_status,
    http_status_of,
    twirp_error_body,
)
from domain.wire_protocol import ProtocolDecodeError, ProtocolEncodeError, UnknownMethodError

__all__ = [
    "TWIRP_HTTP_STATUS",
    "ProtocolDecodeError",
    "ProtocolEncodeError",
    "UnknownMethodError",
    "code_of_http_status",
    "http_status_of",
    "twirp_error_body",
]
