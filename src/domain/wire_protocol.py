"""The ports between the controller's services and the wire: the codec that reads requests and
writes responses in the proto3 JSON mapping (and an isolation's JSON, which the HTTP API shows),
and the calls the gRPC server makes; their errors.

The codec is ``adapters.twirp.codec`` (generated protobuf messages and their JSON); the gRPC
server is ``adapters.grpc_server``. Both transports run the same service functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from domain.errors import CirrusError
from domain.isolation import Isolation

JsonObject = dict[str, Any]
"""A proto3 JSON object, as Twirp carries it and the gRPC server hands it over."""

WORKERS_SERVICE = "CirrusWorkersService"
CI_SERVICE = "CirrusCIService"


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


class CallRefused(Exception):
    """The controller refused a call; ``code`` is the Twirp error code it answers with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class WireCodec(Protocol):
    """Reads the requests and writes the responses of the services' methods."""

    def route_of(self, path: str) -> tuple[str, str]:
        """Return ``(service, method)`` of a Twirp URL path (``UnknownMethodError`` if none)."""
        ...

    def decode_request(self, service: str, method: str, body: object) -> object:
        """Read the request of ``service/method`` (``ProtocolDecodeError`` if malformed)."""
        ...

    def encode_response(self, service: str, method: str, message: object) -> JsonObject:
        """Write the response of ``service/method`` (``None`` for an empty message)."""
        ...


class CallerGone(Protocol):
    """Set when a caller went away (an ``asyncio.Event``): a held ``Poll`` stops waiting."""

    async def wait(self) -> object:
        """Return once the caller is gone."""
        ...


IsolationWriter = Callable[[Isolation], JsonObject]
"""Writes an isolation as its proto3 JSON object, the form the API and the pages show (``{}``
for none, else one member: ``{"tart": {...}}``)."""


class WireCalls(Protocol):
    """The controller's services, called with proto3 JSON objects (``CallRefused`` on refusal)."""

    async def unary(
        self,
        service: str,
        method: str,
        request: JsonObject,
        metadata: Mapping[str, str],
        gone: CallerGone,
    ) -> JsonObject:
        """Answer one call of ``service/method`` (short names, e.g. ``CirrusCIService``).

        ``metadata`` holds the caller's gRPC metadata (lowercase keys); ``gone`` is set when the
        caller goes away, so that a held ``Poll`` can stop waiting.
        """
        ...
