"""What the controller's store holds and returns: task, build and worker records, and its errors.

``domain.store`` declares the store's ports and re-exports these names; import them from there.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.build import BuildSpec, TaskSpec, TaskStatus, counted_status
from domain.errors import CirrusError
from domain.policy import SecurityPolicy
from domain.protocol import CommandResult, frozen_float_map, frozen_str_map
from domain.rerun import split_attempts
from domain.scheduling import QueuedTask, build_status
from domain.source import BuildSource


class StoreError(CirrusError):
    """Root of the storage errors: the database failed or refused an operation."""


class SchemaVersionError(StoreError):
    """The database's schema is newer than this program knows (or otherwise unusable)."""


class NoSuchTaskError(StoreError):
    """An operation that needs an existing task named an unknown task id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token: what a store keeps instead of the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Return whether ``token`` hashes to ``token_hash``, compared in constant time."""
    return hmac.compare_digest(hash_token(token), token_hash)


def lost_worker_message(worker_name: str) -> str:
    """Return the failure message of a started task whose worker was declared lost."""
    return f"worker {worker_name} was lost while running the task"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A stored task: its spec, where it runs, its secrets, status and command results.

    ``sequence`` grows with submission order (FIFO). ``client_secret``/``server_secret`` are
    issued by ``claim_task`` and empty while the task has no worker.
    """

    id: str
    build_id: str
    name: str
    status: TaskStatus
    spec: TaskSpec
    sequence: int
    created_at: float
    updated_at: float
    worker: str | None = None
    client_secret: str = ""
    server_secret: str = ""
    cancel_requested: bool = False
    failure_message: str = ""
    command_results: tuple[CommandResult, ...] = ()
    started_at: float | None = None
    stopped_at: float | None = None
    awaiting_trigger: bool = False
    """A manual task not triggered yet (set at creation from ``spec.manual``)."""
    attempt: int = 1
    """1 as submitted; a re-run's new record has the next number (``domain.rerun``)."""
    rerun_of: str | None = None
    """The id of the attempt this record re-runs (``None`` for a task as submitted)."""

    __hash__ = None  # type: ignore[assignment]  # the spec's read-only maps are not hashable

    def as_queued(self) -> QueuedTask:
        """Return the task as the scheduler sees a queued one."""
        return QueuedTask(
            id=self.id,
            labels=self.spec.labels,
            resources=self.spec.resources,
            sequence=self.sequence,
            isolation=self.spec.isolation,
        )

    @property
    def waiting_for_trigger(self) -> bool:
        """Return whether the task is a manual one that nobody triggered and that may still run."""
        return self.awaiting_trigger and self.status is TaskStatus.CREATED

    @property
    def occupies_worker(self) -> bool:
        """Return whether the task still holds its worker's capacity (claimed, not stopped)."""
        return self.worker is not None and self.stopped_at is None


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    """Who holds a task and with which client secret: what authenticating a task call needs.

    Read without the task's spec or command results, so that checking a call stays cheap.
    """

    id: str
    build_id: str
    worker: str | None
    client_secret: str
    stopped: bool = False
    """Whether the worker's ``TaskStopped`` was recorded (the task takes no more reports)."""


@dataclass(frozen=True, slots=True)
class TaskCredentials:
    """What checking a task call needs, read together: the calling worker's session hash
    (``None`` if it is not registered) and the named task's assignment (``None`` if no task)."""

    session_token_hash: str | None
    assignment: TaskAssignment | None


@dataclass(frozen=True, slots=True)
class TaskToRun:
    """What answering ``InitialCommands`` reads, together: the task and its build's
    submitted environment."""

    task: TaskRecord
    build_environment: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "build_environment", frozen_str_map(self.build_environment))


@dataclass(frozen=True, slots=True)
class TaskStop:
    """What recording a ``TaskStopped`` did: the task as it left it (``None``: the stop was
    not recorded, as the task was not claimed or already stopped) and how many of the task's
    build's tasks are still ``CREATED`` (only those wait for the build to advance)."""

    stopped: TaskRecord | None
    created_left: int


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """A stored build: its environment, its tasks in configuration order, and its source.

    ``tasks`` are the latest attempts (what the build counts, schedules and shows); records
    given there that a re-run replaced move to ``earlier_attempts`` (``domain.rerun``).
    """

    id: str
    environment: Mapping[str, str]
    created_at: float
    tasks: tuple[TaskRecord, ...] = ()
    source: BuildSource = field(default_factory=BuildSource)
    earlier_attempts: tuple[TaskRecord, ...] = ()
    submitted_by: str = ""  # the submitting token's name ("admin": the admin token; "": unknown)

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", frozen_str_map(self.environment))
        latest, earlier = split_attempts(self.tasks)
        object.__setattr__(self, "tasks", tuple(latest))
        known = {task.id for task in earlier}
        kept = [task for task in self.earlier_attempts if task.id not in known]
        object.__setattr__(self, "earlier_attempts", (*kept, *earlier))

    __hash__ = None  # type: ignore[assignment]  # the read-only map is not hashable

    @property
    def status(self) -> TaskStatus:
        """Return the build's status derived from its tasks (PROTOCOL.md).

        As on Cirrus CI, a manual task nobody triggered does not hold the build open: the build
        is final once its other tasks are, and it reopens (``EXECUTING``) if the task is
        triggered later. Skipped-by-condition and allowed failures count as completed.
        """
        return build_status(
            counted_status(task.status, task.spec)
            for task in self.tasks
            if not task.waiting_for_trigger
        )

    @property
    def spec(self) -> BuildSpec:
        """Return the build as submitted (e.g. for ``BuildSpec.dependency_indices``)."""
        return BuildSpec(
            tasks=tuple(task.spec for task in self.tasks), environment=self.environment
        )


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A registered worker as last seen: its declaration and its latest poll."""

    name: str
    session_token_hash: str
    registered_at: float
    last_seen: float
    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    resources_total: Mapping[str, float] = field(default_factory=frozen_float_map)
    resources_in_use: Mapping[str, float] = field(default_factory=frozen_float_map)
    running_task_ids: tuple[str, ...] = ()
    disabled: bool = False
    security_policy: SecurityPolicy = field(default_factory=SecurityPolicy)
    """The policy the worker reported when it registered (the default allows everything)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_str_map(self.labels))
        object.__setattr__(self, "resources_total", frozen_float_map(self.resources_total))
        object.__setattr__(self, "resources_in_use", frozen_float_map(self.resources_in_use))
        object.__setattr__(self, "running_task_ids", tuple(self.running_task_ids))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """The queue (``SCHEDULED`` tasks without a worker) at a glance, without loading it.

    ``last_queued_at`` is the greatest ``updated_at`` of a queued task (``None`` if none is
    queued): only queueing changes a queued task's row, so it grows whenever a task is queued.
    """

    length: int = 0
    last_queued_at: float | None = None


@dataclass(frozen=True, slots=True)
class HeldAndReported:
    """The tasks that occupy a worker (oldest first) and, by id, the tasks its poll reported
    that do not (as ``WorkerCheckIn.reported``)."""

    held: tuple[TaskRecord, ...] = ()
    reported: Mapping[str, TaskRecord | None] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]  # holds records that are not hashable


REPORTED_LOOKUP_LIMIT = 100
"""The most reported tasks a check-in reads (a worker runs few; more cost one read each)."""


@dataclass(frozen=True, slots=True)
class WorkerCheckIn:
    """What a worker's ``Poll`` recorded and read in one store call: the worker as its poll
    left it, the tasks that occupy it (oldest first) and the head of the queue (oldest first).

    ``reported``: the tasks the poll listed as running that do not occupy the worker, by id
    (the first ``REPORTED_LOOKUP_LIMIT``); ``None`` for an id of no task or of a task queued
    without a worker (either way not the worker's to run).
    """

    worker: WorkerRecord
    held: tuple[TaskRecord, ...] = ()
    queued: tuple[TaskRecord, ...] = ()
    reported: Mapping[str, TaskRecord | None] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]  # holds records that are not hashable
