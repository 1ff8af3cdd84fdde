"""The Twirp proto3 JSON codec: golden messages in both spellings, round trips, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf.empty_pb2 import Empty
from hypothesis import given
from hypothesis import strategies as st

from adapters.twirp import codec
from adapters.twirp.errors import (
    TWIRP_HTTP_STATUS,
    ProtocolDecodeError,
    ProtocolEncodeError,
    UnknownMethodError,
    twirp_error_body,
)
from adapters.twirp.task_mapping import result_to_proto
from adapters.twirp.wire_json import shortest_float32
from adapters.twirp.worker_mapping import task_identification_for, worker_info_to_proto
from adapters.wire.cirrus_ci_service_pb2 import (
    CommitUploadedArtifactsResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    InitialCommandsRequest,
    QueryRunningTasksRequest,
    RegisterRequest,
    RegisterResponse,
    ReportAgentFinishedRequest,
    ReportAgentFinishedResponse,
    ReportCommandUpdatesRequest,
    ReportCommandUpdatesResponse,
    TaskFailedRequest,
    TaskIdentification,
    UpdateStatusRequest,
    UploadLogsResponse,
    WorkerStatus,
)
from adapters.wire.cirrus_worker_additions_pb2 import AppendLogsRequest
from domain import protocol
from domain.errors import CirrusError
from domain.isolation import (
    ContainerIsolation,
    ContainerVolume,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    Platform,
    TartIsolation,
    TartVolume,
    UnsetIsolation,
    VetuBridged,
    VetuHost,
    VetuIsolation,
)
from domain.protocol import (
    AgentAwareTask,
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    CacheInstruction,
    CloneInstruction,
    Command,
    CommandResult,
    CommandsResponse,
    CommandStatus,
    ExecutionBehaviour,
    ExitInstruction,
    FileInstruction,
    Instruction,
    PollRequest,
    PollResponse,
    RunningTasksStatus,
    ScriptInstruction,
    StandbyInformation,
    StandbyParameters,
    UnknownInstruction,
    UploadCacheInstruction,
    Warmup,
    WorkerInfo,
    frozen_float_map,
    frozen_str_map,
)


def through_json(value: dict[str, object]) -> Any:
    """What the other side parses: the encoded object after a trip through JSON text."""
    return json.loads(json.dumps(value))


# --- strategies -----------------------------------------------------------------------------

texts = st.text(max_size=8)
uint32 = st.integers(0, 2**32 - 1)
uint64 = st.integers(0, 2**64 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
# A container's cpu is a proto `float`: 32 bits on the wire, as in the original, read back as
# the shortest decimal of that float (0.1, not 0.10000000149...).
float32 = st.floats(width=32, allow_nan=False, allow_infinity=False).map(shortest_float32)
resources = st.dictionaries(texts, finite, max_size=3).map(frozen_float_map)

isolations: st.SearchStrategy[Isolation] = st.one_of(
    st.just(NoneIsolation()),
    st.just(UnsetIsolation()),
    st.builds(
        ContainerIsolation,
        image=texts,
        cpu=float32,
        memory=uint32,
        volumes=st.lists(st.builds(ContainerVolume, texts, texts, st.booleans()), max_size=2),
        dockerfile=texts,
        docker_arguments=st.dictionaries(texts, texts, max_size=2),
        platform=st.sampled_from(Platform),
    ),
    st.builds(
        TartIsolation,
        image=texts,
        user=texts,
        password=texts,
        cpu=uint32,
        memory=uint32,
        softnet=st.booleans(),
        mount_temporary_working_directory_from_host=st.booleans(),
        display=texts,
        volumes=st.lists(
            st.builds(TartVolume, texts, texts, texts, st.booleans(), st.booleans()), max_size=2
        ),
        disk_size=uint32,
        port=uint32,
        sync_time_over_ssh=st.booleans(),
        nested=st.booleans(),
    ),
    st.builds(
        VetuIsolation,
        image=texts,
        user=texts,
        password=texts,
        cpu=uint32,
        memory=uint32,
        networking=st.one_of(st.none(), st.just(VetuHost()), st.builds(VetuBridged, texts)),
        disk_size=uint32,
        port=uint32,
        sync_time_over_ssh=st.booleans(),
        standard_output_to_logs=st.booleans(),
    ),
    st.builds(ParallelsIsolation, texts, texts, texts, st.sampled_from(Platform)),
)
standby_parameters = st.builds(
    StandbyParameters, isolations, resources, st.builds(Warmup, texts, uint64)
)
tasks = st.builds(
    AgentAwareTask,
    task_id=st.text(min_size=1, max_size=8),
    client_secret=texts,
    server_secret=texts,
    isolation=isolations,
    resources_to_use=resources,
    cli_version=texts,
    traceparent=texts,
    tracestate=texts,
)
poll_responses = st.builds(
    PollResponse,
    tasks_to_start=st.lists(tasks, max_size=3).map(tuple),
    poll_interval_in_seconds=uint32,
    shutdown=st.booleans(),
    tasks_to_stop=st.lists(texts, max_size=3).map(tuple),
    updated_standby_instances=st.lists(standby_parameters, max_size=2).map(tuple),
)
worker_infos = st.builds(
    WorkerInfo,
    labels=st.dictionaries(texts, texts, max_size=3).map(frozen_str_map),
    resources_total=resources,
)
task_ids = st.one_of(texts, st.integers(-(2**64), 2**64).map(str), st.sampled_from(["007", "+5"]))
poll_requests = st.builds(
    PollRequest,
    worker_info=worker_infos,
    resources_in_use=resources,
    running_tasks=st.lists(task_ids, max_size=4).map(tuple),
    available_standby_instances_information=st.lists(
        st.builds(StandbyInformation, standby_parameters, uint64), max_size=2
    ).map(tuple),
)
scripts = st.lists(texts, max_size=3).map(tuple)
instructions: st.SearchStrategy[Instruction] = st.one_of(
    st.builds(ScriptInstruction, scripts),
    st.builds(BackgroundScriptInstruction, scripts),
    st.builds(FileInstruction, texts, from_environment_variable=texts),
    st.builds(FileInstruction, texts, from_contents=texts),
    st.builds(FileInstruction, texts),
    st.just(ExitInstruction()),
    st.builds(
        CacheInstruction, texts, scripts, scripts, texts, scripts, st.booleans(), st.booleans()
    ),
    st.builds(UploadCacheInstruction, texts),
    st.builds(ArtifactsInstruction, scripts, texts, texts),
    st.just(CloneInstruction()),
    # An instruction unknown to the proto ("teleport_instruction") is read, but has no field to
    # be written with: only the proto's own unknown-to-us members round-trip.
    st.sampled_from(["", "wait_for_terminal_instruction"]).map(UnknownInstruction),
)
commands = st.builds(Command, texts, instructions, st.sampled_from(ExecutionBehaviour))
commands_responses = st.builds(
    CommandsResponse,
    environment=st.dictionaries(texts, texts, max_size=3).map(frozen_str_map),
    commands=st.lists(commands, max_size=4).map(tuple),
    timeout_in_seconds=int64,
    secrets_to_mask=scripts,
)
command_results = st.builds(
    CommandResult, texts, st.sampled_from(CommandStatus), int64, st.booleans()
)


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.10000000149011612, 0.1),
        (3.4028234663852886e38, 3.4028235e38),
        (-3.4028234663852886e38, -3.4028235e38),
    ],
)
def test_a_float_field_reads_back_as_its_shortest_decimal_even_at_the_largest_float(
    value: float, expected: float
) -> None:
    # 3.4e38 rounds up past the largest float32 on the way: it must be skipped, not raised.
    assert shortest_float32(value) == expected


@pytest.mark.parametrize("cpu", [3.4028235e38, -3.4028235e38])
def test_the_largest_float_as_protobuf_writes_it_is_read_not_refused_as_too_large(
    cpu: float,
) -> None:
    # protobuf (Python and Go) writes the largest float32 as 3.4028235e+38, which as a double is
    # just above it: json_format alone refuses it ("Float value too large").
    container = ContainerIsolation(image="i", cpu=cpu)
    written = through_json(codec.encode_isolation(container))
    assert written["container"]["cpu"] == cpu
    assert codec.decode_isolation(written) == container
    assert codec.decode_isolation({"container": {"image": "i", "cpu": cpu}}) == container


@given(isolations)
def test_every_isolation_reads_back_as_written(isolation: Isolation) -> None:
    assert codec.decode_isolation(through_json(codec.encode_isolation(isolation))) == isolation


@given(poll_responses)
def test_every_poll_response_reads_back_as_written(response: PollResponse) -> None:
    assert codec.decode(through_json(codec.encode(response)), PollResponse) == response


@given(poll_requests)
def test_every_poll_request_reads_back_as_written(request: PollRequest) -> None:
    assert codec.decode(through_json(codec.encode(request)), PollRequest) == request


@given(commands_responses)
def test_every_commands_response_reads_back_as_written(response: CommandsResponse) -> None:
    encoded = through_json(codec.encode(response))
    assert codec.decode(encoded, CommandsResponse) == response


@given(st.lists(command_results, max_size=4).map(tuple))
def test_command_results_read_back_as_written(results: tuple[CommandResult, ...]) -> None:
    encoded = [through_json(codec.encode(result)) for result in results]
    assert tuple(codec.decode(body, CommandResult) for body in encoded) == results


@given(st.binary(max_size=64), texts)
def test_log_bytes_read_back_as_written(data: bytes, name: str) -> None:
    request = AppendLogsRequest(command_name=name, data=data)
    assert codec.decode(codec.encode(request), AppendLogsRequest) == request


TASK = TaskIdentification(task_id=42, secret="s3cret")
WORKER = WorkerInfo(labels=frozen_str_map({"name": "w1"}), resources_total=frozen_float_map({}))
WORKER_INFO = worker_info_to_proto(WORKER)
EXAMPLES: dict[tuple[str, str], tuple[object, object]] = {
    ("CirrusWorkersService", "Register"): (
        RegisterRequest(registration_token="token", worker_info=WORKER_INFO),
        RegisterResponse(session_token="session"),
    ),
    ("CirrusWorkersService", "Poll"): (
        PollRequest(WORKER, running_tasks=("1", "a")),
        PollResponse(tasks_to_stop=("x",), poll_interval_in_seconds=5),
    ),
    ("CirrusWorkersService", "TaskStarted"): (TASK, Empty()),
    ("CirrusWorkersService", "TaskFailed"): (
        TaskFailedRequest(message="boom", task_identification=TASK),
        Empty(),
    ),
    ("CirrusWorkersService", "TaskStopped"): (TaskIdentification(secret="only"), Empty()),
    ("CirrusWorkersService", "UpdateStatus"): (
        UpdateStatusRequest(disabled=True),
        WorkerStatus(disabled=True),
    ),
    ("CirrusWorkersService", "QueryRunningTasks"): (
        QueryRunningTasksRequest(),
        RunningTasksStatus(disabled=True, running_tasks=("7", "b")),
    ),
    ("CirrusCIService", "InitialCommands"): (
        InitialCommandsRequest(
            local_timestamp=1_700_000_000, continue_from_command="c", retry=True
        ),
        CommandsResponse(commands=(Command("main", ScriptInstruction(("echo",))),)),
    ),
    ("CirrusCIService", "ReportCommandUpdates"): (
        ReportCommandUpdatesRequest(
            updates=[result_to_proto(CommandResult("main", CommandStatus.EXECUTING))]
        ),
        ReportCommandUpdatesResponse(),
    ),
    ("CirrusCIService", "AppendLogs"): (
        AppendLogsRequest(command_name="main", data=b"\x00hi"),
        UploadLogsResponse(bytes_logged=3),
    ),
    ("CirrusCIService", "Heartbeat"): (HeartbeatRequest(), HeartbeatResponse()),
    ("CirrusCIService", "ReportAgentFinished"): (
        ReportAgentFinishedRequest(
            command_results=[result_to_proto(CommandResult("main", CommandStatus.COMPLETED, 5))]
        ),
        ReportAgentFinishedResponse(),
    ),
    ("CirrusCIService", "CacheInfo"): (
        protocol.CacheInfoRequest("pip-abc", ("pip-",)),
        protocol.CacheInfoResponse(protocol.CacheInfo("pip-abc", 2**40, 1700000000, "7")),
    ),
    ("CirrusCIService", "GenerateCacheUploadURL"): (
        protocol.CacheKey("pip-abc"),
        protocol.UploadUrl("/blobs/c?sig=1", protocol.frozen_str_map({"x-a": "b"})),
    ),
    ("CirrusCIService", "GenerateCacheDownloadURLs"): (
        protocol.CacheKey("pip-abc"),
        protocol.DownloadUrls(("http://s3/x", "/blobs/y")),
    ),
    ("CirrusCIService", "GenerateArtifactUploadURLs"): (
        protocol.ArtifactUploadRequest("junit", (protocol.ArtifactFileInfo("a/b.xml", 12),)),
        protocol.ArtifactUploadUrls((protocol.UploadUrl("/blobs/a", protocol.frozen_str_map()),)),
    ),
    ("CirrusCIService", "CommitUploadedArtifacts"): (
        protocol.ArtifactsCommit(
            "junit", "text/xml", "junit", (protocol.ArtifactFileInfo("a/b.xml", 12),)
        ),
        CommitUploadedArtifactsResponse(),
    ),
}


def test_cache_and_artifact_calls_use_the_proto_json_names() -> None:
    upload = codec.encode_response(
        "CirrusCIService",
        "GenerateCacheUploadURL",
        protocol.UploadUrl("/blobs/c", protocol.frozen_str_map({"h": "v"})),
    )
    files = codec.encode_request(
        "CirrusCIService",
        "GenerateArtifactUploadURLs",
        protocol.ArtifactUploadRequest("a", (protocol.ArtifactFileInfo("f", 3),)),
    )
    info = codec.encode_request(
        "CirrusCIService", "CacheInfo", protocol.CacheInfoRequest("k", ("p",))
    )
    assert upload == {"url": "/blobs/c", "extraHeaders": {"h": "v"}}
    assert files == {"name": "a", "files": [{"path": "f", "sizeInBytes": "3"}]}
    assert info == {"cacheKey": "k", "cacheKeyPrefixes": ["p"]}


def test_every_method_of_both_services_has_an_example() -> None:
    assert set(EXAMPLES) == set(codec.METHODS)


@pytest.mark.parametrize("route", sorted(EXAMPLES))
def test_every_method_reads_back_its_request_and_response_as_written(
    route: tuple[str, str],
) -> None:
    service, method = route
    request, response = EXAMPLES[route]
    encoded_request = through_json(codec.encode_request(service, method, request))
    encoded_response = through_json(codec.encode_response(service, method, response))
    assert codec.decode_request(service, method, encoded_request) == request
    assert codec.decode_response(service, method, encoded_response) == response


# --- golden messages ------------------------------------------------------------------------

POLL_RESPONSE_CAMEL = {
    "tasksToStart": [
        {
            "taskId": "t-1",
            "clientSecret": "cs",
            "serverSecret": "ss",
            "cliVersion": "1.2.3",
            "resourcesToUse": {"tart-vms": 1},
            "traceparent": "00-abc-def-01",
            "isolation": {
                "tart": {
                    "image": "ghcr.io/cirruslabs/macos:latest",
                    "user": "admin",
                    "password": "admin",
                    "cpu": 4,
                    "memory": "8192",
                    "softnet": True,
                    "display": "1920x1080",
                    "diskSize": 50,
                    "port": 22,
                    "syncTimeOverSsh": True,
                    "nested": True,
                    "volumes": [
                        {"name": "cache", "source": "/c", "target": "/m", "readOnly": True}
                    ],
                }
            },
        },
        {"oldTaskId": "42"},
    ],
    "oldTaskIdsToStop": ["7", 8],
    "pollIntervalInSeconds": 30,
    "shutdown": False,
    "tasksToStop": ["7", "t-9"],
    "updatedStandbyInstances": [
        {
            "isolation": {"vetu": {"image": "img", "networking": None, "host": {}}},
            "resources": {"vetu-vms": 1.0},
            "warmup": {"script": "true", "timeoutSeconds": "60"},
        }
    ],
    "someFutureField": {"ignored": True},
}
POLL_RESPONSE_SNAKE = {
    "tasks_to_start": [
        {
            "task_id": "t-1",
            "client_secret": "cs",
            "server_secret": "ss",
            "cli_version": "1.2.3",
            "agent_version": "deprecated and ignored",
            "resources_to_use": {"tart-vms": "1"},
            "traceparent": "00-abc-def-01",
            "isolation": {
                "tart": {
                    "image": "ghcr.io/cirruslabs/macos:latest",
                    "user": "admin",
                    "password": "admin",
                    "cpu": "4",
                    "memory": 8192,
                    "softnet": True,
                    "display": "1920x1080",
                    "disk_size": 50,
                    "port": 22,
                    "sync_time_over_ssh": True,
                    "nested": True,
                    "volumes": [
                        {"name": "cache", "source": "/c", "target": "/m", "read_only": True}
                    ],
                }
            },
        },
        {"old_task_id": 42, "task_id": ""},
    ],
    "old_task_ids_to_stop": [7, "8"],
    "poll_interval_in_seconds": "30",
    "tasks_to_stop": ["7", "t-9"],
    "updated_standby_instances": [
        {
            "isolation": {"vetu": {"image": "img", "host": {}}},
            "resources": {"vetu-vms": 1},
            "warmup": {"script": "true", "timeout_seconds": 60},
        }
    ],
}
POLL_RESPONSE = PollResponse(
    tasks_to_start=(
        AgentAwareTask(
            task_id="t-1",
            client_secret="cs",
            server_secret="ss",
            cli_version="1.2.3",
            resources_to_use=frozen_float_map({"tart-vms": 1.0}),
            traceparent="00-abc-def-01",
            isolation=TartIsolation(
                image="ghcr.io/cirruslabs/macos:latest",
                user="admin",
                password="admin",
                cpu=4,
                memory=8192,
                softnet=True,
                display="1920x1080",
                disk_size=50,
                port=22,
                sync_time_over_ssh=True,
                nested=True,
                volumes=(TartVolume(name="cache", source="/c", target="/m", read_only=True),),
            ),
        ),
        AgentAwareTask(task_id="42"),
    ),
    poll_interval_in_seconds=30,
    tasks_to_stop=("7", "t-9", "8"),
    updated_standby_instances=(
        StandbyParameters(
            isolation=VetuIsolation(image="img", networking=VetuHost()),
            resources=frozen_float_map({"vetu-vms": 1.0}),
            warmup=Warmup(script="true", timeout_seconds=60),
        ),
    ),
)


@pytest.mark.parametrize("body", [POLL_RESPONSE_CAMEL, POLL_RESPONSE_SNAKE], ids=["camel", "snake"])
def test_a_poll_response_reads_the_same_in_camel_and_snake_case(body: dict[str, object]) -> None:
    assert codec.decode(body, PollResponse) == POLL_RESPONSE


def test_a_task_without_a_task_id_uses_its_deprecated_numeric_id() -> None:
    response = codec.decode({"tasksToStart": [{"oldTaskId": "-5"}]}, PollResponse)
    assert response.tasks_to_start[0].task_id == "-5"


def test_a_task_with_a_task_id_ignores_its_deprecated_numeric_id() -> None:
    response = codec.decode({"tasksToStart": [{"oldTaskId": 1, "taskId": "abc"}]}, PollResponse)
    assert response.tasks_to_start[0].task_id == "abc"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, NoneIsolation()),
        ({}, UnsetIsolation()),
        ({"none": {}}, NoneIsolation()),
        (
            {"parallels": {"image": "i", "platform": "DARWIN"}},
            ParallelsIsolation("i", platform=Platform.DARWIN),
        ),
        ({"parallels": {"platform": 1}}, ParallelsIsolation(platform=Platform.WINDOWS)),
        (
            {
                "container": {
                    "image": "debian",
                    "cpu": 2.5,
                    "memory": 4096,
                    "dockerfile": "Dockerfile",
                    "dockerArguments": {"A": "1"},
                    "platform": "LINUX",
                    "volumes": [{"source": "/s", "target": "/t", "readOnly": True}],
                }
            },
            ContainerIsolation(
                image="debian",
                cpu=2.5,
                memory=4096,
                dockerfile="Dockerfile",
                docker_arguments=(("A", "1"),),
                volumes=(ContainerVolume("/s", "/t", True),),
            ),
        ),
        (
            {"container": {"cpu": "NaN"}},
            None,  # NaN is checked apart: it equals nothing
        ),
        (
            {"vetu": {"bridged": {"interface": "br0"}, "standard_output_to_logs": True}},
            VetuIsolation(networking=VetuBridged("br0"), standard_output_to_logs=True),
        ),
        ({"vetu": {"diskSize": 20, "port": 2222}}, VetuIsolation(disk_size=20, port=2222)),
    ],
)
def test_golden_isolations_read_as_expected(body: object, expected: Isolation | None) -> None:
    decoded = codec.decode({"tasksToStart": [{"taskId": "1", "isolation": body}]}, PollResponse)
    isolation = decoded.tasks_to_start[0].isolation
    if expected is None:
        assert isinstance(isolation, ContainerIsolation)
        assert isolation.cpu != isolation.cpu
    else:
        assert isolation == expected


@pytest.mark.parametrize(
    ("isolation", "expected"),
    [
        (NoneIsolation(), {"none": {}}),
        (UnsetIsolation(), {}),
        (TartIsolation(), {"tart": {}}),
        (
            VetuIsolation(image="i", cpu=2, networking=VetuBridged("br0")),
            {"vetu": {"image": "i", "cpu": 2, "bridged": {"interface": "br0"}}},
        ),
        (VetuIsolation(networking=VetuHost()), {"vetu": {"host": {}}}),
        (
            ContainerIsolation(image="d", cpu=0.5, docker_arguments=(("B", "2"), ("A", "1"))),
            {"container": {"image": "d", "cpu": 0.5, "dockerArguments": {"A": "1", "B": "2"}}},
        ),
        (
            ParallelsIsolation(platform=Platform.DARWIN),
            {"parallels": {"platform": "DARWIN"}},
        ),
        (
            TartIsolation(disk_size=50, sync_time_over_ssh=True, nested=True),
            {"tart": {"diskSize": 50, "syncTimeOverSsh": True, "nested": True}},
        ),
    ],
)
def test_golden_isolations_are_written_as_expected(
    isolation: Isolation, expected: dict[str, object]
) -> None:
    assert codec.encode_isolation(isolation) == expected


COMMANDS_CAMEL = {
    "environment": {"A": "1"},
    "serverToken": "ignored",
    "timeoutInSeconds": "3600",
    "secretsToMask": ["hunter2"],
    "failedAtLeastOnce": True,
    "commands": [
        {"name": "main", "scriptInstruction": {"scripts": ["echo a", "echo b"]}},
        {"name": "bg", "backgroundScriptInstruction": {"scripts": ["sleep 9"]}},
        {
            "name": "f",
            "fileInstruction": {"destinationPath": "a.txt", "fromContents": "x"},
            "executionBehaviour": "ALWAYS",
        },
        {"name": "e", "fileInstruction": {"destinationPath": "b", "fromEnvironmentVariable": "V"}},
        {"name": "exit", "exitInstruction": {}, "executionBehaviour": 1},
        {"name": "cache", "cacheInstruction": {"folder": "f", "reuploadOnChanges": True}},
        {"name": "up", "uploadCacheInstruction": {"cacheName": "c"}},
        {"name": "art", "artifactsInstruction": {"paths": ["*.xml"], "type": "t", "format": "f"}},
        {"name": "clone", "cloneInstruction": {}, "executionBehaviour": "ON_TIMEOUT"},
        {"name": "term", "waitForTerminalInstruction": {"terminalServerAddress": "x"}},
        {"name": "new", "teleportInstruction": {}},
        {"name": "bare", "properties": {"k": "v"}},
    ],
}
COMMANDS_SNAKE = {
    "environment": {"A": "1"},
    "timeout_in_seconds": 3600,
    "secrets_to_mask": ["hunter2"],
    "commands": [
        {"name": "main", "script_instruction": {"scripts": ["echo a", "echo b"]}},
        {"name": "bg", "background_script_instruction": {"scripts": ["sleep 9"]}},
        {
            "name": "f",
            "file_instruction": {"destination_path": "a.txt", "from_contents": "x"},
            "execution_behaviour": 2,
        },
        {
            "name": "e",
            "file_instruction": {"destination_path": "b", "from_environment_variable": "V"},
        },
        {"name": "exit", "exit_instruction": {}, "execution_behaviour": "ON_FAILURE"},
        {"name": "cache", "cache_instruction": {"folder": "f", "reupload_on_changes": True}},
        {"name": "up", "upload_cache_instruction": {"cache_name": "c"}},
        {"name": "art", "artifacts_instruction": {"paths": ["*.xml"], "type": "t", "format": "f"}},
        {"name": "clone", "clone_instruction": {}, "execution_behaviour": 3},
        {"name": "term", "wait_for_terminal_instruction": {}},
        {"name": "new", "teleport_instruction": {}},
        {"name": "bare"},
    ],
}
COMMANDS = CommandsResponse(
    environment=frozen_str_map({"A": "1"}),
    timeout_in_seconds=3600,
    secrets_to_mask=("hunter2",),
    commands=(
        Command("main", ScriptInstruction(("echo a", "echo b"))),
        Command("bg", BackgroundScriptInstruction(("sleep 9",))),
        Command("f", FileInstruction("a.txt", from_contents="x"), ExecutionBehaviour.ALWAYS),
        Command("e", FileInstruction("b", from_environment_variable="V")),
        Command("exit", ExitInstruction(), ExecutionBehaviour.ON_FAILURE),
        Command("cache", CacheInstruction(folder="f", reupload_on_changes=True)),
        Command("up", UploadCacheInstruction("c")),
        Command("art", ArtifactsInstruction(("*.xml",), "t", "f")),
        Command("clone", CloneInstruction(), ExecutionBehaviour.ON_TIMEOUT),
        Command("term", UnknownInstruction("wait_for_terminal_instruction")),
        Command("new", UnknownInstruction("teleport_instruction")),
        Command("bare", UnknownInstruction("")),
    ),
)


@pytest.mark.parametrize("body", [COMMANDS_CAMEL, COMMANDS_SNAKE], ids=["camel", "snake"])
def test_a_commands_response_reads_the_same_in_camel_and_snake_case(
    body: dict[str, object],
) -> None:
    assert codec.decode(body, CommandsResponse) == COMMANDS


def test_a_poll_request_is_written_in_camel_case_with_deprecated_numeric_ids() -> None:
    request = PollRequest(
        worker_info=WorkerInfo(
            labels=frozen_str_map({"os": "linux", "name": "w"}),
            resources_total=frozen_float_map({"tart-vms": 2}),
        ),
        resources_in_use=frozen_float_map({"tart-vms": 1}),
        running_tasks=("12", "abc", "007", "99999999999999999999"),
        available_standby_instances_information=(
            StandbyInformation(StandbyParameters(isolation=TartIsolation(image="i")), 30),
        ),
    )
    assert codec.encode(request) == {
        "workerInfo": {"labels": {"name": "w", "os": "linux"}, "resourcesTotal": {"tart-vms": 2.0}},
        "oldRunningTasks": ["12"],
        "resourcesInUse": {"tart-vms": 1.0},
        "runningTasks": ["12", "abc", "007", "99999999999999999999"],
        "availableStandbyInstancesInformation": [
            {"parameters": {"isolation": {"tart": {"image": "i"}}}, "ageSeconds": "30"}
        ],
    }


def test_a_controller_reads_deprecated_running_task_ids_of_an_old_worker() -> None:
    request = codec.decode({"old_running_tasks": ["5", 6], "running_tasks": ["5"]}, PollRequest)
    assert request.running_tasks == ("5", "6")


def test_query_running_tasks_folds_deprecated_ids_and_reads_the_status() -> None:
    body = {"status": {"disabled": True}, "oldRunningTasks": ["3"], "runningTasks": ["x"]}
    assert codec.decode(body, RunningTasksStatus) == RunningTasksStatus(True, ("x", "3"))


def failed(message: str, task: TaskIdentification | None = None) -> TaskFailedRequest:
    """A ``TaskFailedRequest``, with the deprecated task identification when given."""
    return TaskFailedRequest(message=message, task_identification=task)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (failed("no", task_identification_for("42", "cs")), {
            "taskIdentification": {"taskId": "42", "secret": "cs"},
            "message": "no",
        }),
        (failed("no", task_identification_for("t-1", "cs")), {
            "taskIdentification": {"secret": "cs"},
            "message": "no",
        }),
        (failed("no"), {"message": "no"}),
    ],
)  # fmt: skip
def test_task_failed_carries_the_numeric_task_id_only_when_there_is_one(
    message: TaskFailedRequest, expected: dict[str, object]
) -> None:
    assert codec.encode(message) == expected


@pytest.mark.parametrize(
    ("task_id", "expected"),
    [("42", 42), ("+7", 7), ("-3", -3), ("007", 7), ("t-1", 0), ("1e3", 0), (" 1", 0),
     ("1_000", 0), ("9223372036854775807", 2**63 - 1), ("9223372036854775808", 0)],
)  # fmt: skip
def test_a_task_id_is_numeric_when_it_parses_as_a_base_ten_int64(
    task_id: str, expected: int
) -> None:
    assert task_identification_for(task_id, "s") == TaskIdentification(task_id=expected, secret="s")


def test_command_results_and_logs_are_written_with_names_strings_and_base64() -> None:
    result = CommandResult(
        "main", CommandStatus.FAILED, duration_in_nanos=1500, signaled_to_exit=True
    )
    assert codec.encode(result) == {
        "name": "main",
        "status": "FAILED",
        "durationInNanos": "1500",
        "signaledToExit": True,
    }
    logs = AppendLogsRequest(command_name="main", data=b"hi\n\xff")
    assert codec.encode(logs) == {
        "commandName": "main",
        "data": "aGkK/w==",
    }
    assert codec.encode(InitialCommandsRequest(local_timestamp=17)) == {"localTimestamp": "17"}


@pytest.mark.parametrize("data", ["aGkK/w==", "aGkK/w", "aGkK_w"])
def test_log_data_reads_from_standard_or_url_safe_base64_with_or_without_padding(data: str) -> None:
    request = codec.decode({"command_name": "m", "data": data}, AppendLogsRequest)
    assert request.data == b"hi\n\xff"


def test_null_fields_mean_defaults_and_unknown_fields_are_ignored() -> None:
    body = {"tasksToStart": None, "shutdown": None, "pollIntervalInSeconds": None, "x": [1]}
    assert codec.decode(body, PollResponse) == PollResponse()


def test_an_empty_response_is_written_as_an_empty_object() -> None:
    assert codec.encode_response("CirrusWorkersService", "TaskStarted", None) == {}
    assert codec.decode_response("CirrusCIService", "Heartbeat", {"whatever": 1}) == (
        HeartbeatResponse()
    )


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shutdown": "yes"}, "shutdown"),
        ({"pollIntervalInSeconds": "ten"}, "pollIntervalInSeconds"),
        ({"pollIntervalInSeconds": -1}, "pollIntervalInSeconds"),
        ({"pollIntervalInSeconds": 1.5}, "pollIntervalInSeconds"),
        ({"tasksToStop": "a"}, "tasksToStop"),
        ({"tasksToStop": [1]}, "tasksToStop[0]"),
        ({"oldTaskIdsToStop": ["9223372036854775808"]}, "oldTaskIdsToStop[0]"),
        ({"tasksToStart": [{"taskId": 5}]}, "tasksToStart[0].taskId"),
        ({"tasksToStart": [[]]}, "tasksToStart[0]"),
        ({"tasksToStart": [{"isolation": "tart"}]}, "tasksToStart[0].isolation"),
        ({"tasksToStart": [{"isolation": {"tart": {"cpu": "x"}}}]},
         "tasksToStart[0].isolation.tart.cpu"),
        ({"tasksToStart": [{"isolation": {"none": {}, "tart": {}}}]}, "tasksToStart[0].isolation"),
        ({"tasksToStart": [{"isolation": {"none": 1}}]}, "tasksToStart[0].isolation.none"),
        ({"tasksToStart": [{"isolation": {"vetu": {"host": {}, "bridged": {}}}}]},
         "tasksToStart[0].isolation.vetu"),
    ],
)  # fmt: skip
def test_a_malformed_poll_response_names_the_offending_field(body: object, field: str) -> None:
    with pytest.raises(ProtocolDecodeError) as caught:
        codec.decode(body, PollResponse)
    assert _last_name(field) in str(caught.value)
    assert isinstance(caught.value, CirrusError)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"commands": [{"scriptInstruction": {}, "exitInstruction": {}}]}, "commands[0]"),
        ({"commands": [{"fileInstruction": {"fromContents": "a", "fromEnvironmentVariable": "b"}}]},
         "commands[0].fileInstruction"),
        ({"commands": [{"scriptInstruction": {"scripts": "echo"}}]},
         "commands[0].scriptInstruction.scripts"),
        ({"timeoutInSeconds": True}, "timeoutInSeconds"),
    ],
)  # fmt: skip
def test_a_malformed_commands_response_names_the_offending_field(body: object, field: str) -> None:
    with pytest.raises(ProtocolDecodeError) as caught:
        codec.decode(body, CommandsResponse)
    assert _last_name(field) in str(caught.value)


def _last_name(path: str) -> str:
    """The innermost field name of a path: json_format names fields, not list indexes."""
    return path.split(".")[-1].split("[")[0]


def test_bad_base64_and_a_non_object_body_are_decode_errors() -> None:
    with pytest.raises(ProtocolDecodeError, match="data"):
        codec.decode({"data": "not base64!"}, AppendLogsRequest)
    with pytest.raises(ProtocolDecodeError, match="object"):
        codec.decode(["sessionToken"], RegisterResponse)


def test_a_file_instruction_with_two_sources_cannot_be_written() -> None:
    command = Command("f", FileInstruction("p", from_environment_variable="V", from_contents="c"))
    with pytest.raises(ProtocolEncodeError):
        codec.encode(command)


def test_routes_map_to_paths_and_back() -> None:
    path = codec.method_path("CirrusWorkersService", "Poll")
    assert path == "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/Poll"
    assert codec.route_of(path) == ("CirrusWorkersService", "Poll")
    assert codec.route_of(codec.method_path("CirrusCIService", "AppendLogs")) == (
        "CirrusCIService",
        "AppendLogs",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/twirp/org.cirruslabs.ci.services.cirruscigrpc.CirrusWorkersService/StreamLogs",
        "/twirp/org.cirruslabs.ci.services.cirruscigrpc.Nope/Poll",
        "/twirp/other.CirrusWorkersService/Poll",
        "/api/v1/builds",
    ],
)
def test_an_unknown_route_is_an_unknown_method(path: str) -> None:
    with pytest.raises(UnknownMethodError):
        codec.route_of(path)


def test_a_message_of_the_wrong_type_for_the_method_cannot_be_written() -> None:
    with pytest.raises(ProtocolEncodeError):
        codec.encode_request("CirrusWorkersService", "Poll", RegisterRequest())
    with pytest.raises(UnknownMethodError):
        codec.decode_request("CirrusCIService", "StreamLogs", {})


def test_twirp_error_statuses_follow_the_wire_contract() -> None:
    contract = {
        "invalid_argument": 400,
        "unauthenticated": 401,
        "permission_denied": 403,
        "not_found": 404,
        "already_exists": 409,
        "resource_exhausted": 429,
        "internal": 500,
        "unavailable": 503,
        "deadline_exceeded": 504,
    }
    assert {code: TWIRP_HTTP_STATUS[code] for code in contract} == contract
    assert twirp_error_body("not_found", "no task 7") == {"code": "not_found", "msg": "no task 7"}
