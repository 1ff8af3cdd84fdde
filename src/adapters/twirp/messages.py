"""Wire-only messages: proto messages with no domain counterpart of their own.

The domain models what the worker reasons about (``PollRequest``, ``CommandsResponse``…); these
are the envelopes around them on the wire, needed by a controller decoding requests and by the
codec's round trips. Field names are the proto's, in snake_case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from domain.protocol import CommandResult, WorkerInfo

_GO_INT64 = re.compile(r"[+-]?[0-9]+")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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


@dataclass(frozen=True, slots=True)
class Empty:
    """``google.protobuf.Empty`` and the empty responses (``HeartbeatResponse``…): ``{}``."""


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """Proto ``RegisterRequest``."""

    registration_token: str = ""
    worker_info: WorkerInfo = field(default_factory=WorkerInfo)


@dataclass(frozen=True, slots=True)
class RegisterResponse:
    """Proto ``RegisterResponse``."""

    session_token: str = ""


@dataclass(frozen=True, slots=True)
class TaskIdentification:
    """Proto ``TaskIdentification``: the deprecated numeric task id and the client secret."""

    task_id: int = 0
    secret: str = ""


def task_identification_for(task_id: str, client_secret: str) -> TaskIdentification:
    """Build the ``TaskIdentification`` of a task; a non-numeric id leaves ``task_id`` at 0."""
    return TaskIdentification(task_id=parse_int64(task_id) or 0, secret=client_secret)


@dataclass(frozen=True, slots=True)
class TaskFailedRequest:
    """Proto ``TaskFailedRequest``; ``task_identification`` is deprecated, ``None`` if absent."""

    message: str = ""
    task_identification: TaskIdentification | None = None


@dataclass(frozen=True, slots=True)
class UpdateStatusRequest:
    """Proto ``UpdateStatusRequest``."""

    disabled: bool = False


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """Proto ``WorkerStatus``."""

    disabled: bool = False


@dataclass(frozen=True, slots=True)
class QueryRunningTasksRequest:
    """Proto ``QueryRunningTasksRequest`` (the worker sends ``info`` empty)."""

    info: WorkerInfo = field(default_factory=WorkerInfo)


@dataclass(frozen=True, slots=True)
class InitialCommandsRequest:
    """Proto ``InitialCommandsRequest`` (without the deprecated task identification)."""

    local_timestamp: int = 0
    continue_from_command: str = ""
    retry: bool = False


@dataclass(frozen=True, slots=True)
class ReportCommandUpdatesRequest:
    """Proto ``ReportCommandUpdatesRequest``."""

    updates: tuple[CommandResult, ...] = ()


@dataclass(frozen=True, slots=True)
class AppendLogsRequest:
    """This project's unary ``AppendLogs``: raw output bytes of one command, in order."""

    command_name: str = ""
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class UploadLogsResponse:
    """Proto ``UploadLogsResponse``."""

    bytes_logged: int = 0


@dataclass(frozen=True, slots=True)
class ReportAgentFinishedRequest:
    """Proto ``ReportAgentFinishedRequest`` (command results only)."""

    command_results: tuple[CommandResult, ...] = ()
