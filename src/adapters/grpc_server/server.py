"""The controller's gRPC server (grpc.aio): ``CirrusWorkersService`` and ``CirrusCIService``
for the original Go ``cirrus worker run`` and the agent it launches.

Every method is registered from the service descriptors of the generated wire model, so the
server speaks exactly the messages of ``proto/``. A unary call becomes a proto3 JSON object for
``WireCalls``; the client-streamed logs become ``AppendLogs`` calls (``log_streams``); the
methods the controller does not serve answer ``UNIMPLEMENTED`` with a message that says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor
from google.protobuf.message import Message

from adapters.grpc_server.calls import CallRefused, WireCalls, grpc_status
from adapters.grpc_server.log_streams import LOG_STREAM_METHODS, LogStreams
from adapters.grpc_server.metadata import call_metadata, with_old_identification

log = logging.getLogger("cirrus.controller")

SERVED_SERVICES = ("CirrusWorkersService", "CirrusCIService")
"""The services of the wire model this server registers (by their short names)."""

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Largest message either way: a log chunk of the agent is at most about 1 MiB."""

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # The Go agent pings every 30 s even without a call in flight; gRPC's default policy (one
    # ping per 5 min) would answer it with GOAWAY "too_many_pings" and drop its connection.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
)

Behavior = Callable[..., Any]


def _message_class(descriptor: Any) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


class _UnaryCall:
    """One unary method: protobuf in, proto3 JSON to ``WireCalls``, protobuf out."""

    def __init__(self, calls: WireCalls, service: str, method: MethodDescriptor) -> None:
        self._calls = calls
        self._service = service
        self._method = method.name
        self._response = _message_class(method.output_type)

    async def answer(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        gone = asyncio.Event()
        context.add_done_callback(lambda _context: gone.set())
        body = json_format.MessageToDict(request)
        metadata = with_old_identification(call_metadata(context), body)
        try:
            answer = await self._calls.unary(self._service, self._method, body, metadata, gone)
        except CallRefused as refused:
            await context.abort(grpc_status(refused.code), refused.message)
        return json_format.ParseDict(answer, self._response(), ignore_unknown_fields=True)


def _not_served(service: str, method: str) -> Behavior:
    async def refuse(_request: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{service}/{method} is not served by this controller over gRPC",
        )

    return refuse


def _handler(calls: WireCalls, service: str, method: MethodDescriptor) -> grpc.RpcMethodHandler:
    """Return the handler of one method of ``service``."""
    request = _message_class(method.input_type)
    response = _message_class(method.output_type)
    codec: Mapping[str, Any] = {
        "request_deserializer": request.FromString,
        "response_serializer": response.SerializeToString,
    }
    if method.client_streaming and not method.server_streaming:
        if method.name in LOG_STREAM_METHODS:
            logs = LogStreams(calls, response, replace=LOG_STREAM_METHODS[method.name])
            return grpc.stream_unary_rpc_method_handler(logs.receive, **codec)
        return grpc.stream_unary_rpc_method_handler(_not_served(service, method.name), **codec)
    if method.server_streaming:
        unserved = _not_served(service, method.name)
        if method.client_streaming:
            return grpc.stream_stream_rpc_method_handler(unserved, **codec)
        return grpc.unary_stream_rpc_method_handler(unserved, **codec)
    return grpc.unary_unary_rpc_method_handler(_UnaryCall(calls, service, method).answer, **codec)


def service_handlers(calls: WireCalls, wire: FileDescriptor) -> list[grpc.GenericRpcHandler]:
    """Return the generic handlers of ``SERVED_SERVICES`` as ``wire`` defines them."""
    handlers: list[grpc.GenericRpcHandler] = []
    for name in SERVED_SERVICES:
        service = wire.services_by_name[name]
        methods = {method.name: _handler(calls, name, method) for method in service.methods}
        handlers.append(grpc.method_handlers_generic_handler(service.full_name, methods))
    return handlers


class GrpcBindError(Exception):
    """The gRPC server cannot listen on its address."""


class GrpcServer:
    """A plaintext (h2c) gRPC server of the controller's services, on the running event loop."""

    def __init__(self, calls: WireCalls, wire: FileDescriptor) -> None:
        self._server = grpc.aio.server(options=SERVER_OPTIONS)
        self._server.add_generic_rpc_handlers(service_handlers(calls, wire))

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: any free port) and serve; return the port."""
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(target)
        except RuntimeError as error:
            raise GrpcBindError(f"cannot listen on {target}: {error}") from None
        if bound == 0:
            raise GrpcBindError(f"cannot listen on {target}")
        await self._server.start()
        return int(bound)

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking calls; give those in flight ``grace_seconds`` to end, then cancel them."""
        await self._server.stop(grace_seconds)
