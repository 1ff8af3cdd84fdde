"""The controller's storage port: builds, tasks, their logs, workers and generated tokens.

Every guarded change is a compare-and-set that the adapter performs atomically in the database,
so that several controller processes may share one database: a task is claimed by at most one
worker, a final status is never overwritten, a task is released from a lost worker only once.

Lifecycle of a task's row::

    CREATED ──(dependencies done)──> SCHEDULED ──claim_task──> EXECUTING ──mark_stopped──> final
       └──(a dependency failed)──> SKIPPED     (worker set)    (started_at set   (stopped_at set)
                                                                 by mark_started)

A task whose ``skip`` condition held is created ``SKIPPED`` (``spec.skip_reason`` says why).
A ``trigger_type: manual`` task is created ``CREATED`` with ``awaiting_trigger`` set, and stays
so until ``trigger_task`` clears it; then it follows its dependencies as any other.

``SCHEDULED`` means queued without a worker; a claimed task is ``EXECUTING`` with ``worker`` set
even before its worker reports ``TaskStarted`` (``started_at`` says whether it did). A task holds
its worker's capacity from the claim until ``stopped_at`` is set, also when a ``TaskFailed``
made it final earlier. Ids are decimal strings of growing integers (as Cirrus task ids are).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from domain.build import BuildSpec, TaskSpec, TaskStatus, counted_status
from domain.errors import CirrusError
from domain.policy import SecurityPolicy
from domain.protocol import CommandResult, frozen_float_map, frozen_str_map
from domain.rerun import NewAttempt, split_attempts
from domain.scheduling import QueuedTask, build_status
from domain.snapshots import SnapshotStore
from domain.source import BuildSource

REGISTRATION_TOKEN_KEY = "registration-token-sha256"
"""Setting holding the SHA-256 of the workers' registration token."""

ADMIN_TOKEN_KEY = "admin-token-sha256"
"""Setting holding the SHA-256 of the HTTP API's admin token."""

LOG_CHUNK_LIMIT = 1024 * 1024
"""Largest piece of log a store keeps (and yields) at once; longer appends are split."""


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


class ControllerStore(SnapshotStore, Protocol):
    """Persistent state of the controller; every method is one atomic database operation.

    Times come from the store's injected clock. Unknown ids give ``None``/``False``/``[]``
    unless said otherwise; database failures raise ``StoreError``.
    """

    # --- builds ---------------------------------------------------------------------------

    async def create_build(
        self, spec: BuildSpec, source: BuildSource | None = None, *, submitted_by: str = ""
    ) -> BuildRecord:
        """Store a build, its source, who submitted it and its tasks, each with
        ``domain.build.initial_status`` (manual ones ``awaiting_trigger``)."""
        ...

    async def list_builds(
        self,
        repository: str = "",
        branch: str = "",
        status: TaskStatus | None = None,
        limit: int = 50,
        before: str = "",
        *,
        submitted_by: str = "",
    ) -> list[BuildRecord]:
        """Return up to ``limit`` builds, newest first, with their tasks: only those whose
        source has ``repository``/``branch``, whose status is ``status`` and that
        ``submitted_by`` submitted (each when given), and only builds older than build
        ``before`` (when given)."""
        ...

    async def get_build(self, build_id: str) -> BuildRecord | None:
        """Return a build with its tasks."""
        ...

    async def build_environment(self, build_id: str) -> Mapping[str, str] | None:
        """Return a build's submitted environment alone (None if there is no such build).

        What every task's ``InitialCommands`` needs: loading the whole build would read each of
        its tasks once per task.
        """
        ...

    async def list_build_tasks(self, build_id: str) -> list[TaskRecord]:
        """Return a build's tasks in configuration order."""
        ...

    async def count_build_tasks(self, build_id: str, statuses: Collection[TaskStatus]) -> int:
        """Return how many of a build's tasks have one of ``statuses``."""
        ...

    async def create_attempts(
        self, build_id: str, attempts: Sequence[NewAttempt]
    ) -> list[TaskRecord]:
        """Add the new attempts of a re-run to a build, after its tasks; return them.

        ``domain.rerun.RerunError`` (nothing stored) if one of the re-run attempts was re-run
        meanwhile, so that two re-runs at once make one new attempt.
        """
        ...

    # --- tasks ----------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """Return a task."""
        ...

    async def task_credentials(self, worker_name: str, task_id: str) -> TaskCredentials:
        """Return a worker's session hash and a task's assignment in one read."""
        ...

    async def queued_tasks(
        self, limit: int | None = None, after_sequence: int = 0
    ) -> list[TaskRecord]:
        """Return ``SCHEDULED`` tasks without a worker, oldest first.

        Only the first ``limit`` (all if ``None``) of those whose ``sequence`` is greater than
        ``after_sequence``: a caller pages through a long queue without loading all of it.
        """
        ...

    async def queue_summary(self) -> QueueSummary:
        """Return how many tasks are queued and when the latest of them entered the queue."""
        ...

    async def tasks_of_worker(self, worker_name: str) -> list[TaskRecord]:
        """Return the tasks that occupy a worker (claimed by it and not stopped), oldest first."""
        ...

    async def held_task_ids(self, worker_name: str) -> list[str]:
        """Return the ids of ``tasks_of_worker``, oldest first, without reading the tasks."""
        ...

    async def set_status(
        self,
        task_id: str,
        expected: Collection[TaskStatus],
        new: TaskStatus,
        failure_message: str = "",
    ) -> bool:
        """Set ``new`` if the status is one of ``expected``; return whether it changed."""
        ...

    async def trigger_task(self, task_id: str) -> TaskRecord | None:
        """Clear a task's ``awaiting_trigger`` (if set); return the task as it is now."""
        ...

    async def claim_task(self, task_id: str, worker_name: str) -> TaskRecord | None:
        """Hand a ``SCHEDULED`` unclaimed task to a worker (fresh secrets); ``None`` if taken."""
        ...

    async def mark_started(self, task_id: str) -> bool:
        """Record the first ``TaskStarted`` of a claimed, not final task; return whether it did."""
        ...

    async def record_command_results(self, task_id: str, results: Sequence[CommandResult]) -> None:
        """Merge results by command name (a later result replaces an earlier one)."""
        ...

    async def finish_task(
        self, task_id: str, status: TaskStatus, failure_message: str = ""
    ) -> bool:
        """Make a not yet final task final with ``status``; return whether it changed."""
        ...

    async def mark_stopped(
        self, task_id: str, status_if_not_final: TaskStatus
    ) -> TaskRecord | None:
        """Record a claimed task's ``TaskStopped`` (once) and finalise it if it is not yet."""
        ...

    async def request_cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel: an unclaimed task is ``ABORTED`` now, a claimed one is flagged for its worker."""
        ...

    async def tasks_to_stop_for(self, worker_name: str) -> list[str]:
        """Return ids of the worker's occupying tasks that were asked to cancel."""
        ...

    async def release_worker(self, worker_name: str) -> list[TaskRecord]:
        """Take every occupying task from a lost worker; return the changed tasks.

        Never started and not cancelled: ``SCHEDULED`` again without worker. Cancelled:
        ``ABORTED``. Started: ``FAILED`` with ``lost_worker_message``. Already final: just stopped.
        """
        ...

    # --- logs -----------------------------------------------------------------------------

    async def append_log(self, task_id: str, command: str, data: bytes) -> int:
        """Append bytes to a command's log; return its new size (``NoSuchTaskError`` if none)."""
        ...

    async def log_size(self, task_id: str, command: str) -> int:
        """Return how many bytes a command's log holds."""
        ...

    async def task_log_size(self, task_id: str) -> int:
        """Return how many bytes the logs of all a task's commands hold together."""
        ...

    async def read_log(
        self, task_id: str, command: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        """Return up to ``limit`` bytes of a command's log from ``offset`` (all if ``None``)."""
        ...

    def iter_log(self, task_id: str, command: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield a command's log from ``offset`` in pieces of at most ``LOG_CHUNK_LIMIT``."""
        ...

    # --- workers --------------------------------------------------------------------------

    async def upsert_worker(
        self,
        name: str,
        labels: Mapping[str, str],
        resources_total: Mapping[str, float],
        session_token_hash: str,
        security_policy: SecurityPolicy | None = None,
    ) -> WorkerRecord:
        """Register (or re-register) a worker; an operator's pause survives re-registration, a
        worker's own drain (``set_disabled(..., until_register=True)``) does not. The worker's
        ``security_policy`` replaces the stored one (None: it reported none, all is allowed)."""
        ...

    async def get_worker(self, name: str) -> WorkerRecord | None:
        """Return a worker."""
        ...

    async def worker_session_hash(self, name: str) -> str | None:
        """Return the hash of a worker's session token (``None`` if it is not registered)."""
        ...

    async def list_workers(self) -> list[WorkerRecord]:
        """Return every worker, by name."""
        ...

    async def touch_worker(
        self, name: str, resources_in_use: Mapping[str, float], running_task_ids: Sequence[str]
    ) -> WorkerRecord | None:
        """Record a poll: last seen now, with what the worker reported; return the updated
        worker (``None`` if it is not registered)."""
        ...

    async def set_disabled(
        self, name: str, disabled: bool, *, until_register: bool = False
    ) -> WorkerRecord | None:
        """Pause or resume a worker (``None`` if it is not registered).

        ``until_register`` marks a pause the worker asked for itself while draining: its next
        registration (the restarted worker) clears it. A pause without it (an operator's
        ``cirrus worker pause``) lasts until a resume, and a drain does not shorten it.
        """
        ...

    # --- settings -------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting (e.g. ``REGISTRATION_TOKEN_KEY``)."""
        ...

    async def set_setting(self, key: str, value: str) -> None:
        """Store a setting, replacing any previous value."""
        ...

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""
        ...

    async def aclose(self) -> None:
        """Release the database connection(s)."""
        ...
