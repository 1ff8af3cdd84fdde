"""Proto3 JSON codec of the ``CirrusWorkersService`` messages (registration, polling, status).

Pure functions between domain (or wire-only) values and parsed JSON objects, no I/O. Deprecated
fields are folded in on reading: an ``AgentAwareTask`` without ``taskId`` takes
``str(oldTaskId)``; ``oldTaskIdsToStop`` and ``oldRunningTasks`` are appended (as decimal
strings, skipping ids already listed) to ``tasks_to_stop`` / ``running_tasks``. On writing, a
``PollRequest`` also lists in ``oldRunningTasks`` every running task id that is a canonical
int64 (so that reading it back gives the same value).
"""

from __future__ import annotations

from adapters.twirp.isolation_codec import (
    decode_isolation_field,
    encode_isolation,
)
from adapters.twirp.json_fields import (
    INT64,
    UINT32,
    UINT64,
    JsonReader,
    JsonWriter,
    as_reader,
    read_int,
)
from adapters.twirp.messages import (
    Empty,
    QueryRunningTasksRequest,
    RegisterRequest,
    RegisterResponse,
    TaskFailedRequest,
    TaskIdentification,
    UpdateStatusRequest,
    WorkerStatus,
    canonical_int64,
)
from adapters.twirp.policy_codec import decode_security_policy, encode_security_policy
from domain.policy import SecurityPolicy
from domain.protocol import (
    AgentAwareTask,
    PollRequest,
    PollResponse,
    RunningTasksStatus,
    StandbyInformation,
    StandbyParameters,
    Warmup,
    WorkerInfo,
    frozen_float_map,
    frozen_str_map,
)

JsonObject = dict[str, object]


def _merge_old_ids(ids: tuple[str, ...], old: tuple[int, ...]) -> tuple[str, ...]:
    merged = list(ids)
    for number in old:
        if str(number) not in merged:
            merged.append(str(number))
    return tuple(merged)


def _old_ids(reader: JsonReader, proto_name: str) -> tuple[int, ...]:
    return reader.repeated(proto_name, lambda v, p: read_int(v, p, INT64))


# --- small shared messages ------------------------------------------------------------------


def encode_empty(_: Empty | None = None) -> JsonObject:
    """Write ``google.protobuf.Empty`` (and every other empty message): ``{}``."""
    return {}


def decode_empty(body: object) -> Empty:
    """Read an empty message; any fields (deprecated task identification…) are ignored."""
    as_reader(body)
    return Empty()


def encode_worker_info(info: WorkerInfo) -> JsonObject:
    """Write a ``WorkerInfo``."""
    return (
        JsonWriter()
        .string_map("labels", info.labels)
        .double_map("resources_total", info.resources_total)
        .message("security_policy", encode_security_policy(info.security_policy))
        .build()
    )


def decode_worker_info(body: object, path: str = "") -> WorkerInfo:
    """Read a ``WorkerInfo``."""
    reader = as_reader(body, path)
    policy = reader.raw("security_policy")
    return WorkerInfo(
        labels=frozen_str_map(reader.string_map("labels")),
        resources_total=frozen_float_map(reader.double_map("resources_total")),
        security_policy=(
            SecurityPolicy()
            if policy is None
            else decode_security_policy(policy, reader.field_path("security_policy"))
        ),
    )


def _worker_info_field(reader: JsonReader, proto_name: str) -> WorkerInfo:
    value = reader.raw(proto_name)
    return (
        WorkerInfo() if value is None else decode_worker_info(value, reader.field_path(proto_name))
    )


def encode_task_identification(value: TaskIdentification) -> JsonObject:
    """Write a ``TaskIdentification`` (``taskId`` as an int64 string, omitted when 0)."""
    return JsonWriter().int64("task_id", value.task_id).string("secret", value.secret).build()


def decode_task_identification(body: object, path: str = "") -> TaskIdentification:
    """Read a ``TaskIdentification``."""
    reader = as_reader(body, path)
    return TaskIdentification(
        task_id=reader.integer("task_id", INT64), secret=reader.string("secret")
    )


# --- CirrusWorkersService -------------------------------------------------------------------


def encode_register_request(value: RegisterRequest) -> JsonObject:
    """Write a ``RegisterRequest``."""
    return (
        JsonWriter()
        .string("registration_token", value.registration_token)
        .put("worker_info", encode_worker_info(value.worker_info))
        .build()
    )


def decode_register_request(body: object) -> RegisterRequest:
    """Read a ``RegisterRequest``."""
    reader = as_reader(body)
    return RegisterRequest(
        registration_token=reader.string("registration_token"),
        worker_info=_worker_info_field(reader, "worker_info"),
    )


def encode_register_response(value: RegisterResponse) -> JsonObject:
    """Write a ``RegisterResponse``."""
    return JsonWriter().string("session_token", value.session_token).build()


def decode_register_response(body: object) -> RegisterResponse:
    """Read a ``RegisterResponse``."""
    return RegisterResponse(session_token=as_reader(body).string("session_token"))


def encode_warmup(value: Warmup) -> JsonObject:
    """Write a ``StandbyInstanceParameters.Warmup``."""
    return (
        JsonWriter()
        .string("script", value.script)
        .int64("timeout_seconds", value.timeout_seconds)
        .build()
    )


def decode_warmup(body: object, path: str = "") -> Warmup:
    """Read a ``StandbyInstanceParameters.Warmup``."""
    reader = as_reader(body, path)
    return Warmup(
        script=reader.string("script"), timeout_seconds=reader.integer("timeout_seconds", UINT64)
    )


def encode_standby_parameters(value: StandbyParameters) -> JsonObject:
    """Write a ``StandbyInstanceParameters`` (the isolation always, even ``none``)."""
    return (
        JsonWriter()
        .put("isolation", encode_isolation(value.isolation))
        .double_map("resources", value.resources)
        .message("warmup", encode_warmup(value.warmup))
        .build()
    )


def decode_standby_parameters(body: object, path: str = "") -> StandbyParameters:
    """Read a ``StandbyInstanceParameters``."""
    reader = as_reader(body, path)
    warmup = reader.message("warmup")
    return StandbyParameters(
        isolation=decode_isolation_field(reader, "isolation"),
        resources=frozen_float_map(reader.double_map("resources")),
        warmup=Warmup() if warmup is None else decode_warmup(warmup),
    )


def encode_standby_information(value: StandbyInformation) -> JsonObject:
    """Write a ``StandbyInstanceInformation``."""
    return (
        JsonWriter()
        .put("parameters", encode_standby_parameters(value.parameters))
        .int64("age_seconds", value.age_seconds)
        .build()
    )


def decode_standby_information(body: object, path: str = "") -> StandbyInformation:
    """Read a ``StandbyInstanceInformation``."""
    reader = as_reader(body, path)
    parameters = reader.message("parameters")
    return StandbyInformation(
        parameters=StandbyParameters()
        if parameters is None
        else decode_standby_parameters(parameters),
        age_seconds=reader.integer("age_seconds", UINT64),
    )


def encode_poll_request(value: PollRequest) -> JsonObject:
    """Write a ``PollRequest``, also filling the deprecated ``oldRunningTasks``."""
    old = [n for n in (canonical_int64(t) for t in value.running_tasks) if n is not None]
    return (
        JsonWriter()
        .put("worker_info", encode_worker_info(value.worker_info))
        .repeated("old_running_tasks", [str(n) for n in old])
        .double_map("resources_in_use", value.resources_in_use)
        .repeated("running_tasks", value.running_tasks)
        .repeated(
            "available_standby_instances_information",
            [encode_standby_information(i) for i in value.available_standby_instances_information],
        )
        .build()
    )


def decode_poll_request(body: object) -> PollRequest:
    """Read a ``PollRequest``, folding ``oldRunningTasks`` into ``running_tasks``."""
    reader = as_reader(body)
    return PollRequest(
        worker_info=_worker_info_field(reader, "worker_info"),
        resources_in_use=frozen_float_map(reader.double_map("resources_in_use")),
        running_tasks=_merge_old_ids(
            reader.strings("running_tasks"), _old_ids(reader, "old_running_tasks")
        ),
        available_standby_instances_information=tuple(
            decode_standby_information(i)
            for i in reader.messages("available_standby_instances_information")
        ),
    )


def encode_agent_aware_task(value: AgentAwareTask) -> JsonObject:
    """Write a ``PollResponse.AgentAwareTask`` (the isolation always, even ``none``)."""
    return (
        JsonWriter()
        .string("client_secret", value.client_secret)
        .string("server_secret", value.server_secret)
        .put("isolation", encode_isolation(value.isolation))
        .string("cli_version", value.cli_version)
        .double_map("resources_to_use", value.resources_to_use)
        .string("task_id", value.task_id)
        .string("traceparent", value.traceparent)
        .string("tracestate", value.tracestate)
        .build()
    )


def decode_agent_aware_task(body: object, path: str = "") -> AgentAwareTask:
    """Read a ``PollResponse.AgentAwareTask``; an empty ``taskId`` falls back to ``oldTaskId``."""
    reader = as_reader(body, path)
    task_id = reader.string("task_id") or str(reader.integer("old_task_id", INT64))
    return AgentAwareTask(
        task_id=task_id,
        client_secret=reader.string("client_secret"),
        server_secret=reader.string("server_secret"),
        isolation=decode_isolation_field(reader, "isolation"),
        resources_to_use=frozen_float_map(reader.double_map("resources_to_use")),
        cli_version=reader.string("cli_version"),
        traceparent=reader.string("traceparent"),
        tracestate=reader.string("tracestate"),
    )


def encode_poll_response(value: PollResponse) -> JsonObject:
    """Write a ``PollResponse``."""
    return (
        JsonWriter()
        .repeated("tasks_to_start", [encode_agent_aware_task(t) for t in value.tasks_to_start])
        .int32("poll_interval_in_seconds", value.poll_interval_in_seconds)
        .boolean("shutdown", value.shutdown)
        .repeated("tasks_to_stop", value.tasks_to_stop)
        .repeated(
            "updated_standby_instances",
            [encode_standby_parameters(p) for p in value.updated_standby_instances],
        )
        .build()
    )


def decode_poll_response(body: object) -> PollResponse:
    """Read a ``PollResponse``, folding ``oldTaskIdsToStop`` into ``tasks_to_stop``."""
    reader = as_reader(body)
    return PollResponse(
        tasks_to_start=tuple(decode_agent_aware_task(t) for t in reader.messages("tasks_to_start")),
        poll_interval_in_seconds=reader.integer("poll_interval_in_seconds", UINT32),
        shutdown=reader.boolean("shutdown"),
        tasks_to_stop=_merge_old_ids(
            reader.strings("tasks_to_stop"), _old_ids(reader, "old_task_ids_to_stop")
        ),
        updated_standby_instances=tuple(
            decode_standby_parameters(p) for p in reader.messages("updated_standby_instances")
        ),
    )


def encode_task_failed_request(value: TaskFailedRequest) -> JsonObject:
    """Write a ``TaskFailedRequest``."""
    writer = JsonWriter()
    if value.task_identification is not None:
        writer.put("task_identification", encode_task_identification(value.task_identification))
    return writer.string("message", value.message).build()


def decode_task_failed_request(body: object) -> TaskFailedRequest:
    """Read a ``TaskFailedRequest``."""
    reader = as_reader(body)
    identification = reader.raw("task_identification")
    return TaskFailedRequest(
        message=reader.string("message"),
        task_identification=None
        if identification is None
        else decode_task_identification(identification, reader.field_path("task_identification")),
    )


def encode_update_status_request(value: UpdateStatusRequest) -> JsonObject:
    """Write an ``UpdateStatusRequest``."""
    return JsonWriter().boolean("disabled", value.disabled).build()


def decode_update_status_request(body: object) -> UpdateStatusRequest:
    """Read an ``UpdateStatusRequest``."""
    return UpdateStatusRequest(disabled=as_reader(body).boolean("disabled"))


def encode_worker_status(value: WorkerStatus) -> JsonObject:
    """Write a ``WorkerStatus``."""
    return JsonWriter().boolean("disabled", value.disabled).build()


def decode_worker_status(body: object, path: str = "") -> WorkerStatus:
    """Read a ``WorkerStatus``."""
    return WorkerStatus(disabled=as_reader(body, path).boolean("disabled"))


def encode_query_running_tasks_request(value: QueryRunningTasksRequest) -> JsonObject:
    """Write a ``QueryRunningTasksRequest``."""
    return JsonWriter().message("info", encode_worker_info(value.info)).build()


def decode_query_running_tasks_request(body: object) -> QueryRunningTasksRequest:
    """Read a ``QueryRunningTasksRequest``."""
    return QueryRunningTasksRequest(info=_worker_info_field(as_reader(body), "info"))


def encode_query_running_tasks_response(value: RunningTasksStatus) -> JsonObject:
    """Write a ``QueryRunningTasksResponse``."""
    return (
        JsonWriter()
        .message("status", encode_worker_status(WorkerStatus(disabled=value.disabled)))
        .repeated("running_tasks", value.running_tasks)
        .build()
    )


def decode_query_running_tasks_response(body: object) -> RunningTasksStatus:
    """Read a ``QueryRunningTasksResponse``, folding ``oldRunningTasks`` into ``running_tasks``."""
    reader = as_reader(body)
    status = reader.raw("status")
    return RunningTasksStatus(
        disabled=status is not None
        and decode_worker_status(status, reader.field_path("status")).disabled,
        running_tasks=_merge_old_ids(
            reader.strings("running_tasks"), _old_ids(reader, "old_running_tasks")
        ),
    )
