"""What the gRPC services need from the controller, and how its refusals become gRPC statuses.

The gRPC adapter knows protobuf and HTTP/2; the controller's services speak the proto3 JSON
mapping that Twirp carries. ``WireCalls`` is the seam: the adapter turns each gRPC request into
its JSON object and answers with the JSON object the controller returns, so that both transports
run the very same service functions. ``WireCalls`` and ``CallRefused`` are ports of the domain
(``domain.wire_protocol``), named here for the adapter's modules.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from domain.wire_protocol import CallRefused, JsonObject, WireCalls

__all__ = ["TWIRP_TO_GRPC", "CallRefused", "JsonObject", "WireCalls", "grpc_status"]

TWIRP_TO_GRPC: Mapping[str, grpc.StatusCode] = {
    "canceled": grpc.StatusCode.CANCELLED,
    "unknown": grpc.StatusCode.UNKNOWN,
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "bad_route": grpc.StatusCode.UNIMPLEMENTED,
    "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "aborted": grpc.StatusCode.ABORTED,
    "out_of_range": grpc.StatusCode.OUT_OF_RANGE,
    "unimplemented": grpc.StatusCode.UNIMPLEMENTED,
    "internal": grpc.StatusCode.INTERNAL,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "data_loss": grpc.StatusCode.DATA_LOSS,
}
"""Twirp error code → gRPC status code (Twirp's codes are gRPC's, plus two of its own)."""


def grpc_status(twirp_code: str) -> grpc.StatusCode:
    """Return the gRPC status of a Twirp error code (``UNKNOWN`` for a code Twirp lacks)."""
    return TWIRP_TO_GRPC.get(twirp_code, grpc.StatusCode.UNKNOWN)
