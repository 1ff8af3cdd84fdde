"""``StreamLogs`` and ``SaveLogs``: a command's log sent as a client stream of ``LogEntry``.

The first entry is the key (the command's name); every later one is a chunk of output bytes.
Each chunk reaches the controller as one ``AppendLogs`` call, the unary call the Twirp workers
use, so that the log quota, the masking already done by the sender and the live log views
behave the same for both transports. ``SaveLogs`` re-sends a command's whole log after live
streaming failed: its chunks carry byte offsets from 0, so that the controller appends only the
part it does not hold yet.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from adapters.grpc_server.calls import CallRefused, JsonObject, WireCalls, grpc_status
from adapters.grpc_server.metadata import call_metadata, with_old_identification

LOG_STREAM_METHODS: Mapping[str, bool] = {"StreamLogs": False, "SaveLogs": True}
"""The log stream methods, each with whether its chunks carry offsets (whole-log re-sends)."""

PIECE_BYTES = 512 * 1024
"""Largest ``AppendLogs`` data: half the controller's 1 MiB chunk limit (the Go agent's
chunks may be a little over 1 MiB)."""


def pieces(data: bytes) -> list[bytes]:
    """Return ``data`` cut into parts of at most ``PIECE_BYTES``."""
    return [data[start : start + PIECE_BYTES] for start in range(0, len(data), PIECE_BYTES)]


class LogStreams:
    """The handler of one log stream method."""

    def __init__(self, calls: WireCalls, response: type[Message], *, replace: bool) -> None:
        self._calls = calls
        self._response = response  # UploadLogsResponse of the wire model
        self._replace = replace

    async def receive(
        self, entries: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        """Append every chunk of the stream to its command's log; answer the bytes taken."""
        gone = asyncio.Event()
        context.add_done_callback(lambda _context: gone.set())
        metadata = call_metadata(context)
        command: str | None = None
        received = 0
        async for entry in entries:
            kind = entry.WhichOneof("value")
            if kind == "key":
                command = entry.key.command_name
                metadata = with_old_identification(metadata, json_format.MessageToDict(entry.key))
                continue
            if kind != "chunk":
                continue
            if not command:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "a log stream must start with a LogEntry key naming its command",
                )
            for piece in pieces(entry.chunk.data):
                body: JsonObject = {
                    "commandName": command,
                    "data": base64.b64encode(piece).decode("ascii"),
                }
                if self._replace:
                    body["offset"] = str(received)
                try:
                    await self._calls.unary("CirrusCIService", "AppendLogs", body, metadata, gone)
                except CallRefused as refused:
                    await context.abort(grpc_status(refused.code), refused.message)
                received += len(piece)
        return json_format.ParseDict({"bytesLogged": str(received)}, self._response())
