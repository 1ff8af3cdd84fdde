"""The Twirp methods, and the one registry of how values are written and read: ``encode(value)``
and ``decode(body, Type)`` for any registered domain type or generated message.

Domain types are mapped to the generated wire model in ``worker_mapping`` and ``task_mapping``;
a message with no domain counterpart (``RegisterRequest``, ``TaskIdentification``…) is used as
generated. A method's request and response types come from the services of ``proto/``, each
message replaced by its domain type where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from adapters.twirp import server_messages, task_mapping, worker_mapping
from adapters.twirp.errors import ProtocolEncodeError, UnknownMethodError
from adapters.twirp.isolation_mapping import decode_isolation, encode_isolation
from adapters.twirp.wire_json import JsonObject, WireMapping, from_json, to_json
from adapters.wire import cirrus_ci_service_pb2 as wire
from domain import wire_protocol
from domain.wire_protocol import CI_SERVICE, WORKERS_SERVICE

__all__ = [
    "CI_SERVICE",
    "METHODS",
    "PACKAGE",
    "REGISTRY",
    "WORKERS_SERVICE",
    "MethodTypes",
    "TwirpJsonCodec",
    "decode",
    "decode_isolation",
    "decode_request",
    "decode_response",
    "encode",
    "encode_isolation",
    "encode_request",
    "encode_response",
    "method_path",
    "route_of",
    "to_domain",
]

PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc"

T = TypeVar("T")

REGISTRY: Mapping[type, WireMapping[Any]] = MappingProxyType(
    {mapping.domain: mapping for mapping in (*worker_mapping.MAPPINGS, *task_mapping.MAPPINGS)}
)
_DOMAIN_OF = {mapping.message: mapping.domain for mapping in REGISTRY.values()}

# The methods served over Twirp; the streaming ones are gRPC only.
_TWIRP_METHODS = {
    WORKERS_SERVICE: "Register Poll TaskStarted TaskFailed TaskStopped UpdateStatus"
    " QueryRunningTasks",
    CI_SERVICE: "InitialCommands ReportCommandUpdates AppendLogs Heartbeat ReportAgentFinished"
    " CacheInfo GenerateCacheUploadURL GenerateCacheDownloadURLs GenerateArtifactUploadURLs"
    " CommitUploadedArtifacts",
}


@dataclass(frozen=True, slots=True)
class MethodTypes:
    """The request and response types of one Twirp method (domain types where they exist)."""

    request_type: type
    response_type: type


def _type_of(descriptor: Descriptor) -> type:
    message = message_factory.GetMessageClass(descriptor)
    return _DOMAIN_OF.get(message, message)


METHODS: Mapping[tuple[str, str], MethodTypes] = MappingProxyType(
    {
        (service, name): MethodTypes(_type_of(method.input_type), _type_of(method.output_type))
        for service, names in _TWIRP_METHODS.items()
        for name in names.split()
        for method in [wire.DESCRIPTOR.services_by_name[service].methods_by_name[name]]
    }
)


def encode(value: object) -> JsonObject:
    """Write a registered domain value or a generated message as proto3 JSON."""
    mapping = REGISTRY.get(type(value))
    if mapping is not None:
        return to_json(mapping.to_proto(value))
    if isinstance(value, Message):
        return to_json(value)
    raise ProtocolEncodeError(type(value).__name__, "has no wire form")


def decode(body: object, kind: type[T]) -> T:
    """Read proto3 JSON as a value of ``kind`` (``ProtocolDecodeError`` if malformed)."""
    mapping = REGISTRY.get(kind)
    if mapping is None:
        return cast(T, from_json(body, cast(type[Message], kind)))
    if mapping.from_json is not None:
        return cast(T, mapping.from_json(body))
    return cast(T, mapping.from_proto(from_json(body, mapping.message)))


def to_domain(message: Message, kind: type[T]) -> T:
    """Map a generated message (a field of a wire-only message) to its domain type ``kind``."""
    return cast(T, REGISTRY[kind].from_proto(message))


def method_path(service: str, method: str) -> str:
    """Return the Twirp URL path of a method: ``/twirp/<package>.<Service>/<Method>``."""
    return f"/twirp/{PACKAGE}.{service}/{method}"


def route_of(path: str) -> tuple[str, str]:
    """Return ``(service, method)`` of a Twirp URL path; ``UnknownMethodError`` if no such route."""
    prefix = f"/twirp/{PACKAGE}."
    service, _, method = path.removeprefix(prefix).partition("/")
    if not path.startswith(prefix) or (service, method) not in METHODS:
        raise UnknownMethodError(service or path, method)
    return service, method


def _types(service: str, method: str) -> MethodTypes:
    try:
        return METHODS[(service, method)]
    except KeyError:
        raise UnknownMethodError(service, method) from None


def _checked(expected: type, message: object, what: str) -> object:
    if not isinstance(message, expected):
        raise ProtocolEncodeError(
            what, f"expected {expected.__name__}, got {type(message).__name__}"
        )
    return message


def encode_request(service: str, method: str, message: object) -> JsonObject:
    """Write the request message of ``service/method``."""
    return encode(_checked(_types(service, method).request_type, message, f"{method} request"))


def decode_request(service: str, method: str, body: object) -> object:
    """Read the request of ``service/method`` (``ProtocolDecodeError`` if malformed)."""
    return decode(body, _types(service, method).request_type)


def encode_response(service: str, method: str, message: object) -> JsonObject:
    """Write the response message of ``service/method`` (``None`` for an empty message)."""
    expected = _types(service, method).response_type
    if message is None and issubclass(expected, Message) and not expected.DESCRIPTOR.fields:
        return {}
    return encode(_checked(expected, message, f"{method} response"))


def decode_response(service: str, method: str, body: object) -> object:
    """Read the response of ``service/method`` (``ProtocolDecodeError`` if malformed)."""
    return decode(body, _types(service, method).response_type)


class TwirpJsonCodec:
    """The ``domain.wire_protocol.WireCodec`` of the controller's services (both transports):
    every request it reads and every answer it writes is a domain value
    (``server_messages`` translates the calls that have no domain type in the registry)."""

    def route_of(self, path: str) -> tuple[str, str]:
        """Return ``(service, method)`` of a Twirp URL path (``UnknownMethodError`` if none)."""
        return route_of(path)

    def decode_request(self, service: str, method: str, body: object) -> object:
        """Read the request of ``service/method`` (``ProtocolDecodeError`` if malformed)."""
        message = decode_request(service, method, body)
        return server_messages.request_value(service, method, message)

    def encode_response(
        self, service: str, method: str, message: object
    ) -> wire_protocol.JsonObject:
        """Write the response of ``service/method`` (``None`` for an empty message)."""
        answer = server_messages.response_message(message)
        return dict(encode_response(service, method, answer))
