"""Messages exchanged between a worker and its controller, as domain values.

These mirror the Cirrus proto messages of ``CirrusWorkersService`` and ``CirrusCIService`` (see
``spec/PROTOCOL.md``) field by field, in snake_case. Encoding them to and from the wire (Twirp
JSON, proto3 JSON mapping) is an adapter's job.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from domain.isolation import Isolation, NoneIsolation
from domain.policy import SecurityPolicy


def frozen_float_map(value: Mapping[str, float] | None = None) -> Mapping[str, float]:
    """Return a read-only copy of a resource map."""
    return MappingProxyType({str(k): float(v) for k, v in (value or {}).items()})


def frozen_str_map(value: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """Return a read-only copy of a string map."""
    return MappingProxyType({str(k): str(v) for k, v in (value or {}).items()})


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Proto ``WorkerInfo``: labels (reserved + configured) and declared resources, plus this
    project's ``security_policy`` (what the worker will run; the default allows everything, as
    from a worker that reports none)."""

    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    resources_total: Mapping[str, float] = field(default_factory=frozen_float_map)
    security_policy: SecurityPolicy = field(default_factory=SecurityPolicy)


@dataclass(frozen=True, slots=True)
class Warmup:
    """Proto ``StandbyInstanceParameters.Warmup``."""

    script: str = ""
    timeout_seconds: int = 0


@dataclass(frozen=True, slots=True)
class StandbyParameters:
    """Proto ``StandbyInstanceParameters``."""

    isolation: Isolation = field(default_factory=NoneIsolation)
    resources: Mapping[str, float] = field(default_factory=frozen_float_map)
    warmup: Warmup = field(default_factory=Warmup)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StandbyParameters):
            return NotImplemented
        return (
            self.isolation == other.isolation
            and dict(self.resources) == dict(other.resources)
            and self.warmup == other.warmup
        )

    def __hash__(self) -> int:
        return hash((self.isolation, tuple(sorted(self.resources.items())), self.warmup))


@dataclass(frozen=True, slots=True)
class StandbyInformation:
    """Proto ``StandbyInstanceInformation``: a warm standby and its age since warm-up."""

    parameters: StandbyParameters
    age_seconds: int = 0


@dataclass(frozen=True, slots=True)
class AgentAwareTask:
    """Proto ``PollResponse.AgentAwareTask``: a task the controller asks the worker to run."""

    task_id: str
    client_secret: str = ""
    server_secret: str = ""
    isolation: Isolation = field(default_factory=NoneIsolation)
    resources_to_use: Mapping[str, float] = field(default_factory=frozen_float_map)
    cli_version: str = ""
    traceparent: str = ""
    tracestate: str = ""


@dataclass(frozen=True, slots=True)
class PollRequest:
    """Proto ``PollRequest``."""

    worker_info: WorkerInfo
    resources_in_use: Mapping[str, float] = field(default_factory=frozen_float_map)
    running_tasks: tuple[str, ...] = ()
    available_standby_instances_information: tuple[StandbyInformation, ...] = ()


@dataclass(frozen=True, slots=True)
class PollResponse:
    """Proto ``PollResponse`` (deprecated int64 ids already folded into the string lists)."""

    tasks_to_start: tuple[AgentAwareTask, ...] = ()
    poll_interval_in_seconds: int = 0
    shutdown: bool = False
    tasks_to_stop: tuple[str, ...] = ()
    updated_standby_instances: tuple[StandbyParameters, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskRef:
    """Identifies a task in task-scoped calls (``org.cirruslabs.task-id`` and client secret)."""

    task_id: str
    client_secret: str = ""


@dataclass(frozen=True, slots=True)
class RunningTasksStatus:
    """Proto ``QueryRunningTasksResponse``."""

    disabled: bool = False
    running_tasks: tuple[str, ...] = ()


# --- CirrusCIService ----------------------------------------------------------------------


class CommandStatus(enum.IntEnum):
    """Proto enum ``Status`` as used for commands and tasks."""

    CREATED = 0
    TRIGGERED = 1
    SCHEDULED = 2
    EXECUTING = 3
    ABORTED = 4
    FAILED = 5
    COMPLETED = 6
    SKIPPED = 7


class ExecutionBehaviour(enum.IntEnum):
    """Proto enum ``Command.CommandExecutionBehavior``."""

    ON_SUCCESS = 0
    ON_FAILURE = 1
    ALWAYS = 2
    ON_TIMEOUT = 3


@dataclass(frozen=True, slots=True)
class ScriptInstruction:
    """Run ``scripts`` as one shell script."""

    scripts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BackgroundScriptInstruction:
    """Start ``scripts`` in the background; killed when the task ends."""

    scripts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileInstruction:
    """Write a file from an environment variable or from literal contents."""

    destination_path: str = ""
    from_environment_variable: str | None = None
    from_contents: str | None = None


@dataclass(frozen=True, slots=True)
class ExitInstruction:
    """End the task: later commands are skipped except ``ALWAYS`` ones."""


@dataclass(frozen=True, slots=True)
class CacheInstruction:
    """Proto ``CacheInstruction`` (not implemented by this worker)."""

    folder: str = ""
    folders: tuple[str, ...] = ()
    fingerprint_scripts: tuple[str, ...] = ()
    fingerprint_key: str = ""
    populate_scripts: tuple[str, ...] = ()
    reupload_on_changes: bool = False
    optimistically_restore_on_miss: bool = False


@dataclass(frozen=True, slots=True)
class UploadCacheInstruction:
    """Proto ``UploadCacheInstruction`` (not implemented by this worker)."""

    cache_name: str = ""


@dataclass(frozen=True, slots=True)
class ArtifactsInstruction:
    """Proto ``ArtifactsInstruction``."""

    paths: tuple[str, ...] = ()
    type: str = ""
    format: str = ""


@dataclass(frozen=True, slots=True)
class CloneInstruction:
    """Proto ``CloneInstruction`` (not implemented by this worker)."""


@dataclass(frozen=True, slots=True)
class UnknownInstruction:
    """An instruction this worker does not know (or a command with none set)."""

    name: str = ""


Instruction: TypeAlias = (
    ScriptInstruction
    | BackgroundScriptInstruction
    | FileInstruction
    | ExitInstruction
    | CacheInstruction
    | UploadCacheInstruction
    | ArtifactsInstruction
    | CloneInstruction
    | UnknownInstruction
)


@dataclass(frozen=True, slots=True)
class Command:
    """Proto ``Command``: a named instruction with its execution behaviour."""

    name: str
    instruction: Instruction = field(default_factory=UnknownInstruction)
    execution_behaviour: ExecutionBehaviour = ExecutionBehaviour.ON_SUCCESS


@dataclass(frozen=True, slots=True)
class CommandsResponse:
    """Proto ``CommandsResponse``: what a task must run."""

    environment: Mapping[str, str] = field(default_factory=frozen_str_map)
    commands: tuple[Command, ...] = ()
    timeout_in_seconds: int = 0
    secrets_to_mask: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Proto ``CommandResult``."""

    name: str
    status: CommandStatus
    duration_in_nanos: int = 0
    signaled_to_exit: bool = False


# --- caches and artifacts (CirrusCIService) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Proto ``CacheKey``: the request of ``GenerateCacheUploadURL``/``…DownloadURLs``."""

    cache_key: str = ""


@dataclass(frozen=True, slots=True)
class CacheInfoRequest:
    """Proto ``CacheInfoRequest``: an exact key, or the newest cache under one of the prefixes."""

    cache_key: str = ""
    cache_key_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Proto ``CacheInfo``: a cache entry the controller holds."""

    key: str = ""
    size_in_bytes: int = 0
    creation_timestamp: int = 0
    created_by_task_id: str = ""


@dataclass(frozen=True, slots=True)
class CacheInfoResponse:
    """Proto ``CacheInfoResponse`` (a missing cache is a Twirp ``not_found``, not ``None``)."""

    info: CacheInfo = field(default_factory=CacheInfo)


@dataclass(frozen=True, slots=True)
class UploadUrl:
    """A URL with the headers to send to it: proto ``GenerateURLResponse`` (``extraHeaders``)
    and ``GenerateArtifactUploadURLsResponse.UploadURL`` (``headers``)."""

    url: str = ""
    headers: Mapping[str, str] = field(default_factory=frozen_str_map)


@dataclass(frozen=True, slots=True)
class DownloadUrls:
    """Proto ``GenerateURLsResponse``."""

    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactFileInfo:
    """Proto ``ArtifactFileInfo``: a file of an artifact, relative to the working directory."""

    path: str = ""
    size_in_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ArtifactUploadRequest:
    """Proto ``GenerateArtifactUploadURLsRequest``."""

    name: str = ""
    files: tuple[ArtifactFileInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactUploadUrls:
    """Proto ``GenerateArtifactUploadURLsResponse``: one URL per requested file, same order."""

    urls: tuple[UploadUrl, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactsCommit:
    """Proto ``CommitUploadedArtifactsRequest``: the artifact becomes visible."""

    name: str = ""
    type: str = ""
    format: str = ""
    files: tuple[ArtifactFileInfo, ...] = ()
