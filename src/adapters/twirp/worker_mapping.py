"""``CirrusWorkersService`` messages with a domain counterpart (worker info, polling, running
tasks) <-> the generated wire model; the others are used as generated.

Deprecated fields are folded in on reading: an ``AgentAwareTask`` without ``taskId`` takes
``str(oldTaskId)``; ``oldTaskIdsToStop`` and ``oldRunningTasks`` are appended (as decimal
strings, skipping ids already listed) to ``tasks_to_stop`` / ``running_tasks``. On writing, a
``PollRequest`` also lists in ``oldRunningTasks`` every running task id that is a canonical
int64, for controllers that read only the old field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from adapters.twirp.isolation_mapping import (
    isolation_field,
    isolation_to_proto,
    policy_from_proto,
    policy_to_proto,
)
from adapters.twirp.wire_json import WireMapping, named, plain
from adapters.wire import cirrus_ci_service_pb2 as wire
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

_GO_INT64 = re.compile(r"[+-]?[0-9]+")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TASK = "task_id client_secret server_secret cli_version traceparent tracestate"


def _merge_old_ids(ids: Iterable[str], old: Iterable[int]) -> tuple[str, ...]:
    merged = list(ids)
    merged += [str(number) for number in old if str(number) not in merged]
    return tuple(merged)


def parse_int64(text: str) -> int | None:
    """Parse a base-10 int64 the way Go's ``strconv.ParseInt(s, 10, 64)`` does, else ``None``."""
    if not _GO_INT64.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def canonical_int64(text: str) -> int | None:
    """Return the int64 whose decimal spelling is exactly ``text`` (no sign or zero padding)."""
    value = parse_int64(text)
    return value if value is not None and str(value) == text else None


def task_identification_for(task_id: str, client_secret: str) -> wire.TaskIdentification:
    """Build the ``TaskIdentification`` of a task; a non-numeric id leaves ``task_id`` at 0."""
    return wire.TaskIdentification(task_id=parse_int64(task_id) or 0, secret=client_secret)


def worker_info_to_proto(info: WorkerInfo) -> wire.WorkerInfo:
    """Map a ``WorkerInfo`` (with this project's security policy) to its message."""
    return wire.WorkerInfo(
        labels=dict(info.labels),
        resources_total=dict(info.resources_total),
        security_policy=policy_to_proto(info.security_policy),
    )


def worker_info_from_proto(message: wire.WorkerInfo) -> WorkerInfo:
    """Map a ``WorkerInfo`` message to the domain."""
    return WorkerInfo(
        labels=frozen_str_map(message.labels),
        resources_total=frozen_float_map(message.resources_total),
        security_policy=policy_from_proto(message.security_policy),
    )


def _standby_parameters(value: StandbyParameters) -> wire.StandbyInstanceParameters:
    warmup = value.warmup
    return wire.StandbyInstanceParameters(
        isolation=isolation_to_proto(value.isolation),
        resources=dict(value.resources),
        warmup=None
        if warmup == Warmup()
        else wire.StandbyInstanceParameters.Warmup(
            script=warmup.script, timeout_seconds=warmup.timeout_seconds
        ),
    )


def _standby_parameters_from(message: wire.StandbyInstanceParameters) -> StandbyParameters:
    return StandbyParameters(
        isolation=isolation_field(message),
        resources=frozen_float_map(message.resources),
        warmup=Warmup(**plain(message.warmup, "script timeout_seconds")),
    )


def _poll_request(value: PollRequest) -> wire.PollRequest:
    return wire.PollRequest(
        worker_info=worker_info_to_proto(value.worker_info),
        old_running_tasks=[
            n for n in (canonical_int64(t) for t in value.running_tasks) if n is not None
        ],
        resources_in_use=dict(value.resources_in_use),
        running_tasks=value.running_tasks,
        available_standby_instances_information=[
            wire.StandbyInstanceInformation(
                parameters=_standby_parameters(i.parameters), age_seconds=i.age_seconds
            )
            for i in value.available_standby_instances_information
        ],
    )


def _poll_request_from(message: wire.PollRequest) -> PollRequest:
    return PollRequest(
        worker_info=worker_info_from_proto(message.worker_info),
        resources_in_use=frozen_float_map(message.resources_in_use),
        running_tasks=_merge_old_ids(message.running_tasks, message.old_running_tasks),
        available_standby_instances_information=tuple(
            StandbyInformation(_standby_parameters_from(i.parameters), i.age_seconds)
            for i in message.available_standby_instances_information
        ),
    )


def _poll_response(value: PollResponse) -> wire.PollResponse:
    tasks = [
        wire.PollResponse.AgentAwareTask(
            **named(t, _TASK),
            isolation=isolation_to_proto(t.isolation),
            resources_to_use=dict(t.resources_to_use),
        )
        for t in value.tasks_to_start
    ]
    return wire.PollResponse(
        tasks_to_start=tasks,
        poll_interval_in_seconds=value.poll_interval_in_seconds,
        shutdown=value.shutdown,
        tasks_to_stop=value.tasks_to_stop,
        updated_standby_instances=[_standby_parameters(p) for p in value.updated_standby_instances],
    )


def _agent_aware_task_from(message: wire.PollResponse.AgentAwareTask) -> AgentAwareTask:
    fields = plain(message, _TASK)
    fields["task_id"] = message.task_id or str(message.old_task_id)
    return AgentAwareTask(
        **fields,
        isolation=isolation_field(message),
        resources_to_use=frozen_float_map(message.resources_to_use),
    )


def _poll_response_from(message: wire.PollResponse) -> PollResponse:
    return PollResponse(
        tasks_to_start=tuple(_agent_aware_task_from(t) for t in message.tasks_to_start),
        poll_interval_in_seconds=message.poll_interval_in_seconds,
        shutdown=message.shutdown,
        tasks_to_stop=_merge_old_ids(message.tasks_to_stop, message.old_task_ids_to_stop),
        updated_standby_instances=tuple(
            _standby_parameters_from(p) for p in message.updated_standby_instances
        ),
    )


def _running_tasks(value: RunningTasksStatus) -> wire.QueryRunningTasksResponse:
    return wire.QueryRunningTasksResponse(
        status=wire.WorkerStatus(disabled=True) if value.disabled else None,
        running_tasks=value.running_tasks,
    )


def _running_tasks_from(message: wire.QueryRunningTasksResponse) -> RunningTasksStatus:
    return RunningTasksStatus(
        disabled=message.status.disabled,
        running_tasks=_merge_old_ids(message.running_tasks, message.old_running_tasks),
    )


MAPPINGS: tuple[WireMapping[Any], ...] = (
    WireMapping(WorkerInfo, wire.WorkerInfo, worker_info_to_proto, worker_info_from_proto),
    WireMapping(PollRequest, wire.PollRequest, _poll_request, _poll_request_from),
    WireMapping(PollResponse, wire.PollResponse, _poll_response, _poll_response_from),
    WireMapping(
        RunningTasksStatus, wire.QueryRunningTasksResponse, _running_tasks, _running_tasks_from
    ),
)
