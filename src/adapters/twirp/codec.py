"""Proto3 JSON codec of the Twirp services, by message and by ``(service, method)``.

The per-message functions live in ``worker_codec`` (``CirrusWorkersService``), ``task_codec``
(``CirrusCIService``) and ``isolation_codec``; this module re-exports them and adds the table of
methods, so that a server can decode any request and encode any response from its route alone,
and a client can do the reverse. All functions are pure: parsed JSON objects in and out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from adapters.twirp.cache_codec import (
    decode_artifact_upload_request,
    decode_artifact_upload_urls,
    decode_artifacts_commit,
    decode_cache_info_request,
    decode_cache_info_response,
    decode_cache_key,
    decode_generate_url_response,
    decode_generate_urls_response,
    encode_artifact_upload_request,
    encode_artifact_upload_urls,
    encode_artifacts_commit,
    encode_cache_info_request,
    encode_cache_info_response,
    encode_cache_key,
    encode_generate_url_response,
    encode_generate_urls_response,
)
from adapters.twirp.errors import ProtocolEncodeError, UnknownMethodError
from adapters.twirp.isolation_codec import (
    decode_isolation,
    encode_isolation,
)
from adapters.twirp.messages import (
    AppendLogsRequest,
    Empty,
    InitialCommandsRequest,
    QueryRunningTasksRequest,
    RegisterRequest,
    RegisterResponse,
    ReportAgentFinishedRequest,
    ReportCommandUpdatesRequest,
    TaskFailedRequest,
    TaskIdentification,
    UpdateStatusRequest,
    UploadLogsResponse,
    WorkerStatus,
)
from adapters.twirp.task_codec import (
    decode_append_logs_request,
    decode_command,
    decode_command_result,
    decode_commands_response,
    decode_initial_commands_request,
    decode_report_agent_finished_request,
    decode_report_command_updates_request,
    decode_upload_logs_response,
    encode_append_logs_request,
    encode_command,
    encode_command_result,
    encode_commands_response,
    encode_initial_commands_request,
    encode_report_agent_finished_request,
    encode_report_command_updates_request,
    encode_upload_logs_response,
)
from adapters.twirp.worker_codec import (
    decode_agent_aware_task,
    decode_empty,
    decode_poll_request,
    decode_poll_response,
    decode_query_running_tasks_request,
    decode_query_running_tasks_response,
    decode_register_request,
    decode_register_response,
    decode_standby_information,
    decode_standby_parameters,
    decode_task_failed_request,
    decode_task_identification,
    decode_update_status_request,
    decode_warmup,
    decode_worker_info,
    decode_worker_status,
    encode_agent_aware_task,
    encode_empty,
    encode_poll_request,
    encode_poll_response,
    encode_query_running_tasks_request,
    encode_query_running_tasks_response,
    encode_register_request,
    encode_register_response,
    encode_standby_information,
    encode_standby_parameters,
    encode_task_failed_request,
    encode_task_identification,
    encode_update_status_request,
    encode_warmup,
    encode_worker_info,
    encode_worker_status,
)
from domain.protocol import (
    ArtifactsCommit,
    ArtifactUploadRequest,
    ArtifactUploadUrls,
    CacheInfoRequest,
    CacheInfoResponse,
    CacheKey,
    CommandsResponse,
    DownloadUrls,
    PollRequest,
    PollResponse,
    RunningTasksStatus,
    UploadUrl,
)

__all__ = [
    "CI_SERVICE",
    "METHODS",
    "PACKAGE",
    "WORKERS_SERVICE",
    "MethodCodec",
    "decode_agent_aware_task",
    "decode_append_logs_request",
    "decode_command",
    "decode_command_result",
    "decode_commands_response",
    "decode_empty",
    "decode_initial_commands_request",
    "decode_isolation",
    "decode_poll_request",
    "decode_poll_response",
    "decode_query_running_tasks_request",
    "decode_query_running_tasks_response",
    "decode_register_request",
    "decode_register_response",
    "decode_report_agent_finished_request",
    "decode_report_command_updates_request",
    "decode_request",
    "decode_response",
    "decode_standby_information",
    "decode_standby_parameters",
    "decode_task_failed_request",
    "decode_task_identification",
    "decode_update_status_request",
    "decode_upload_logs_response",
    "decode_warmup",
    "decode_worker_info",
    "decode_worker_status",
    "encode_agent_aware_task",
    "encode_append_logs_request",
    "encode_command",
    "encode_command_result",
    "encode_commands_response",
    "encode_empty",
    "encode_initial_commands_request",
    "encode_isolation",
    "encode_poll_request",
    "encode_poll_response",
    "encode_query_running_tasks_request",
    "encode_query_running_tasks_response",
    "encode_register_request",
    "encode_register_response",
    "encode_report_agent_finished_request",
    "encode_report_command_updates_request",
    "encode_request",
    "encode_response",
    "encode_standby_information",
    "encode_standby_parameters",
    "encode_task_failed_request",
    "encode_task_identification",
    "encode_update_status_request",
    "encode_upload_logs_response",
    "encode_warmup",
    "encode_worker_info",
    "encode_worker_status",
    "method_codec",
    "method_path",
    "route_of",
]

PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc"
WORKERS_SERVICE = "CirrusWorkersService"
CI_SERVICE = "CirrusCIService"

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True)
class MethodCodec:
    """How one Twirp method's request and response are written and read."""

    request_type: type
    response_type: type
    encode_request: Callable[[Any], JsonObject]
    decode_request: Callable[[object], object]
    encode_response: Callable[[Any], JsonObject]
    decode_response: Callable[[object], object]


def _codec(
    request: tuple[type, Callable[[Any], JsonObject], Callable[[object], object]],
    response: tuple[type, Callable[[Any], JsonObject], Callable[[object], object]],
) -> MethodCodec:
    return MethodCodec(request[0], response[0], request[1], request[2], response[1], response[2])


_EMPTY = (Empty, encode_empty, decode_empty)
_CACHE_KEY = (CacheKey, encode_cache_key, decode_cache_key)
_TASK_IDENTIFICATION = (TaskIdentification, encode_task_identification, decode_task_identification)

METHODS: Mapping[tuple[str, str], MethodCodec] = MappingProxyType(
    {
        (WORKERS_SERVICE, "Register"): _codec(
            (RegisterRequest, encode_register_request, decode_register_request),
            (RegisterResponse, encode_register_response, decode_register_response),
        ),
        (WORKERS_SERVICE, "Poll"): _codec(
            (PollRequest, encode_poll_request, decode_poll_request),
            (PollResponse, encode_poll_response, decode_poll_response),
        ),
        (WORKERS_SERVICE, "TaskStarted"): _codec(_TASK_IDENTIFICATION, _EMPTY),
        (WORKERS_SERVICE, "TaskFailed"): _codec(
            (TaskFailedRequest, encode_task_failed_request, decode_task_failed_request), _EMPTY
        ),
        (WORKERS_SERVICE, "TaskStopped"): _codec(_TASK_IDENTIFICATION, _EMPTY),
        (WORKERS_SERVICE, "UpdateStatus"): _codec(
            (UpdateStatusRequest, encode_update_status_request, decode_update_status_request),
            (WorkerStatus, encode_worker_status, decode_worker_status),
        ),
        (WORKERS_SERVICE, "QueryRunningTasks"): _codec(
            (
                QueryRunningTasksRequest,
                encode_query_running_tasks_request,
                decode_query_running_tasks_request,
            ),
            (
                RunningTasksStatus,
                encode_query_running_tasks_response,
                decode_query_running_tasks_response,
            ),
        ),
        (CI_SERVICE, "InitialCommands"): _codec(
            (
                InitialCommandsRequest,
                encode_initial_commands_request,
                decode_initial_commands_request,
            ),
            (CommandsResponse, encode_commands_response, decode_commands_response),
        ),
        (CI_SERVICE, "ReportCommandUpdates"): _codec(
            (
                ReportCommandUpdatesRequest,
                encode_report_command_updates_request,
                decode_report_command_updates_request,
            ),
            _EMPTY,
        ),
        (CI_SERVICE, "AppendLogs"): _codec(
            (AppendLogsRequest, encode_append_logs_request, decode_append_logs_request),
            (UploadLogsResponse, encode_upload_logs_response, decode_upload_logs_response),
        ),
        (CI_SERVICE, "Heartbeat"): _codec(_EMPTY, _EMPTY),
        (CI_SERVICE, "ReportAgentFinished"): _codec(
            (
                ReportAgentFinishedRequest,
                encode_report_agent_finished_request,
                decode_report_agent_finished_request,
            ),
            _EMPTY,
        ),
        (CI_SERVICE, "CacheInfo"): _codec(
            (CacheInfoRequest, encode_cache_info_request, decode_cache_info_request),
            (CacheInfoResponse, encode_cache_info_response, decode_cache_info_response),
        ),
        (CI_SERVICE, "GenerateCacheUploadURL"): _codec(
            _CACHE_KEY, (UploadUrl, encode_generate_url_response, decode_generate_url_response)
        ),
        (CI_SERVICE, "GenerateCacheDownloadURLs"): _codec(
            _CACHE_KEY,
            (DownloadUrls, encode_generate_urls_response, decode_generate_urls_response),
        ),
        (CI_SERVICE, "GenerateArtifactUploadURLs"): _codec(
            (
                ArtifactUploadRequest,
                encode_artifact_upload_request,
                decode_artifact_upload_request,
            ),
            (ArtifactUploadUrls, encode_artifact_upload_urls, decode_artifact_upload_urls),
        ),
        (CI_SERVICE, "CommitUploadedArtifacts"): _codec(
            (ArtifactsCommit, encode_artifacts_commit, decode_artifacts_commit), _EMPTY
        ),
    }
)


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


def method_codec(service: str, method: str) -> MethodCodec:
    """Return the codec of a method; ``UnknownMethodError`` if there is none."""
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
    codec = method_codec(service, method)
    return codec.encode_request(_checked(codec.request_type, message, f"{method} request"))


def decode_request(service: str, method: str, body: object) -> object:
    """Read the request of ``service/method`` (``ProtocolDecodeError`` if malformed)."""
    return method_codec(service, method).decode_request(body)


def encode_response(service: str, method: str, message: object) -> JsonObject:
    """Write the response message of ``service/method`` (``None`` is accepted for ``Empty``)."""
    codec = method_codec(service, method)
    if message is None and codec.response_type is Empty:
        message = Empty()
    return codec.encode_response(_checked(codec.response_type, message, f"{method} response"))


def decode_response(service: str, method: str, body: object) -> object:
    """Read the response of ``service/method`` (``ProtocolDecodeError`` if malformed)."""
    return method_codec(service, method).decode_response(body)
