"""The server's codec: what a worker's client writes reads back as a ``domain.worker_calls``
value, and the services' answers are written exactly as the generated responses were."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf.message import Message

from adapters.twirp import codec
from adapters.twirp.codec import TwirpJsonCodec
from adapters.twirp.task_mapping import result_to_proto
from adapters.twirp.worker_mapping import worker_info_to_proto
from adapters.wire import cirrus_ci_service_pb2 as wire
from adapters.wire import cirrus_worker_additions_pb2 as additions
from domain.protocol import (
    CommandResult,
    CommandStatus,
    PollRequest,
    WorkerInfo,
    frozen_float_map,
    frozen_str_map,
)
from domain.wire_protocol import CI_SERVICE, WORKERS_SERVICE, ProtocolDecodeError
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

SERVER = TwirpJsonCodec()
INFO = WorkerInfo(frozen_str_map({"name": "w1", "os": "linux"}), frozen_float_map({"cpu": 4.0}))
RUNNING = CommandResult("main", CommandStatus.EXECUTING)
DONE = CommandResult("main", CommandStatus.COMPLETED, 5, signaled_to_exit=True)

# (service, method): the request as the worker's client builds it, and the value the services get.
REQUESTS: dict[tuple[str, str], tuple[Message, object]] = {
    (WORKERS_SERVICE, "Register"): (
        wire.RegisterRequest(registration_token="reg", worker_info=worker_info_to_proto(INFO)),
        Registration("reg", INFO),
    ),
    (WORKERS_SERVICE, "TaskFailed"): (
        wire.TaskFailedRequest(message="no such image"),
        TaskFailure("no such image"),
    ),
    (WORKERS_SERVICE, "UpdateStatus"): (
        wire.UpdateStatusRequest(disabled=True),
        StatusUpdate(disabled=True),
    ),
    (CI_SERVICE, "ReportCommandUpdates"): (
        wire.ReportCommandUpdatesRequest(updates=[result_to_proto(RUNNING)]),
        CommandUpdates((RUNNING,)),
    ),
    (CI_SERVICE, "AppendLogs"): (
        additions.AppendLogsRequest(command_name="main", data=b"\x00hi", offset=0),
        LogChunk("main", b"\x00hi", offset=0),
    ),
    (CI_SERVICE, "ReportAgentFinished"): (
        wire.ReportAgentFinishedRequest(command_results=[result_to_proto(DONE)]),
        AgentFinished((DONE,)),
    ),
}

# (service, method): an answer of the services, its JSON, and the message the client reads.
ANSWERS: dict[tuple[str, str], tuple[object, dict[str, Any], Message]] = {
    (WORKERS_SERVICE, "Register"): (
        SessionGranted("s-1"),
        {"sessionToken": "s-1"},
        wire.RegisterResponse(session_token="s-1"),
    ),
    (WORKERS_SERVICE, "UpdateStatus"): (
        WorkerStatus(disabled=True),
        {"disabled": True},
        wire.WorkerStatus(disabled=True),
    ),
    (CI_SERVICE, "AppendLogs"): (
        LogsAccepted(bytes_logged=2**40),
        {"bytesLogged": "1099511627776"},
        wire.UploadLogsResponse(bytes_logged=2**40),
    ),
}


def _through_json(body: dict[str, Any]) -> Any:
    return json.loads(json.dumps(body))


@pytest.mark.parametrize("route", sorted(REQUESTS))
def test_each_translated_request_reads_back_as_its_domain_value(route: tuple[str, str]) -> None:
    service, method = route
    sent, expected = REQUESTS[route]
    body = _through_json(codec.encode_request(service, method, sent))
    assert SERVER.decode_request(service, method, body) == expected


@pytest.mark.parametrize("route", sorted(ANSWERS))
def test_each_translated_answer_is_written_as_the_client_reads_it(route: tuple[str, str]) -> None:
    service, method = route
    answer, expected_json, read = ANSWERS[route]
    written = SERVER.encode_response(service, method, answer)
    assert written == expected_json
    assert written == codec.encode_response(service, method, read)  # byte for byte as before
    assert codec.decode_response(service, method, _through_json(written)) == read


def test_an_append_without_offset_reads_as_a_plain_append_and_offset_zero_stays_zero() -> None:
    plain = SERVER.decode_request(CI_SERVICE, "AppendLogs", {"commandName": "m", "data": "aGk="})
    at_zero = SERVER.decode_request(
        CI_SERVICE, "AppendLogs", {"commandName": "m", "data": "aGk=", "offset": "0"}
    )
    assert plain == LogChunk("m", b"hi", offset=None)
    assert at_zero == LogChunk("m", b"hi", offset=0)


def test_a_negative_log_offset_is_still_refused_as_malformed() -> None:
    with pytest.raises(ProtocolDecodeError, match="offset"):
        SERVER.decode_request(CI_SERVICE, "AppendLogs", {"commandName": "m", "offset": "-1"})


def test_calls_with_a_domain_type_of_their_own_pass_through_unchanged() -> None:
    poll = SERVER.decode_request(WORKERS_SERVICE, "Poll", {"workerInfo": {}})
    assert isinstance(poll, PollRequest)
    assert SERVER.encode_response(WORKERS_SERVICE, "TaskStarted", None) == {}


def test_the_registration_keeps_the_worker_name_and_resources() -> None:
    body = {
        "registrationToken": "reg",
        "workerInfo": {"labels": {"name": "w1"}, "resourcesTotal": {"cpu": 2}},
    }
    registration = SERVER.decode_request(WORKERS_SERVICE, "Register", body)
    assert isinstance(registration, Registration)
    assert dict(registration.worker_info.labels) == {"name": "w1"}
    assert dict(registration.worker_info.resources_total) == {"cpu": 2.0}
