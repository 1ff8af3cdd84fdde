"""The controller's side of the calls whose messages have no domain type of their own: the
request a service receives becomes a ``domain.worker_calls`` value, and the value it answers
becomes the response message.

Only the server's codec (``codec.TwirpJsonCodec``) translates. The method table and the
module-level functions of ``codec``, which the worker's client uses, keep the generated
messages: what the client sends and reads is not touched by this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from google.protobuf.message import Message

from adapters.twirp.task_mapping import result_from_proto
from adapters.twirp.worker_mapping import worker_info_from_proto
from adapters.wire import cirrus_ci_service_pb2 as wire
from adapters.wire import cirrus_worker_additions_pb2 as additions
from domain.wire_protocol import CI_SERVICE, WORKERS_SERVICE
from domain.worker_calls import (
    AgentFinished,
    CommandUpdates,
    LogChunk,
    LogsAccepted,
    Registration,
    SessionGranted,
    StatusUpdate,
    TaskFailure,
    WorkerStatus,
)


def _registration(message: wire.RegisterRequest) -> Registration:
    return Registration(message.registration_token, worker_info_from_proto(message.worker_info))


def _command_updates(message: wire.ReportCommandUpdatesRequest) -> CommandUpdates:
    return CommandUpdates(tuple(result_from_proto(update) for update in message.updates))


def _log_chunk(message: additions.AppendLogsRequest) -> LogChunk:
    # ``optional``: an absent offset (a plain append) differs from offset 0.
    offset = message.offset if message.HasField("offset") else None
    return LogChunk(message.command_name, message.data, offset)


def _agent_finished(message: wire.ReportAgentFinishedRequest) -> AgentFinished:
    return AgentFinished(tuple(result_from_proto(result) for result in message.command_results))


_REQUESTS: Mapping[tuple[str, str], Callable[[Any], object]] = MappingProxyType(
    {
        (WORKERS_SERVICE, "Register"): _registration,
        (WORKERS_SERVICE, "TaskFailed"): lambda m: TaskFailure(m.message),
        (WORKERS_SERVICE, "UpdateStatus"): lambda m: StatusUpdate(m.disabled),
        (CI_SERVICE, "ReportCommandUpdates"): _command_updates,
        (CI_SERVICE, "AppendLogs"): _log_chunk,
        (CI_SERVICE, "ReportAgentFinished"): _agent_finished,
    }
)

_RESPONSES: Mapping[type, Callable[[Any], Message]] = MappingProxyType(
    {
        SessionGranted: lambda v: wire.RegisterResponse(session_token=v.session_token),
        WorkerStatus: lambda v: wire.WorkerStatus(disabled=v.disabled),
        LogsAccepted: lambda v: wire.UploadLogsResponse(bytes_logged=v.bytes_logged),
    }
)


def request_value(service: str, method: str, message: object) -> object:
    """Return the domain value of a decoded request (``message`` itself if it is one already)."""
    translate = _REQUESTS.get((service, method))
    return message if translate is None else translate(message)


def response_message(answer: object) -> object:
    """Return the message of a service's answer (``answer`` itself if the codec writes it)."""
    translate = _RESPONSES.get(type(answer))
    return answer if translate is None else translate(answer)
