"""The requests and answers of the controller's services that have no domain value elsewhere.

``domain.protocol`` holds the messages both ends share in full (``PollRequest``,
``CommandsResponse``...). The calls here carry a field or two the controller acts on; the
server's codec (``adapters.twirp.server_messages``) reads their messages into these values and
writes the answers back, so the services never see a generated message. Fields the controller
does not read (the deprecated ``task_identification``, the agent's cache retrieval attempts and
resource utilization) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.protocol import CommandResult, WorkerInfo


@dataclass(frozen=True, slots=True)
class Registration:
    """``Register``: the fleet's registration token and what the worker is."""

    registration_token: str
    worker_info: WorkerInfo


@dataclass(frozen=True, slots=True)
class SessionGranted:
    """The answer of ``Register``: the session token of the worker's next calls."""

    session_token: str


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """``TaskFailed``: why the worker could not run the task."""

    message: str


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """``UpdateStatus``: pause (``disabled``) or resume a worker."""

    disabled: bool


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """The answer of ``UpdateStatus``: whether the worker now takes no new tasks."""

    disabled: bool


@dataclass(frozen=True, slots=True)
class CommandUpdates:
    """``ReportCommandUpdates``: the statuses of commands as they run."""

    updates: tuple[CommandResult, ...] = ()


@dataclass(frozen=True, slots=True)
class LogChunk:
    """``AppendLogs``: bytes of a command's log; ``offset`` is where they start in it as the
    worker sent it, or None for a plain append."""

    command_name: str
    data: bytes
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class LogsAccepted:
    """The answer of ``AppendLogs``: the bytes the controller counts as logged."""

    bytes_logged: int


@dataclass(frozen=True, slots=True)
class AgentFinished:
    """``ReportAgentFinished``: the final results of the task's commands."""

    command_results: tuple[CommandResult, ...] = ()
