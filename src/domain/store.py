"""The controller's storage ports: builds, the task queue, logs, workers and settings.

Each service asks for the narrow port(s) it uses (``BuildStore``, ``TaskQueue``, ``LogStore``,
``WorkerRegistry``, ``SettingStore``; ``SchedulingStore`` for the scheduler). ``ControllerStore``
is all of them plus snapshots: what the composition root opens and the SQL stores implement.
The records these ports return live in ``domain.store_records`` and are re-exported here.

Every guarded change is a compare-and-set that the adapter performs atomically in the database,
so that several controller processes may share one database: a task is claimed by at most one
worker, a final status is never overwritten, a task is released from a lost worker only once.

Lifecycle of a task's row::

    CREATED ──(dependencies done)──> SCHEDULED ──claim_task──> EXECUTING ──stop_task──> final
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

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Protocol

from domain.build import BuildSpec, TaskStatus
from domain.log_quota import AppendedLog
from domain.policy import SecurityPolicy
from domain.protocol import CommandResult
from domain.rerun import NewAttempt
from domain.snapshots import SnapshotStore
from domain.source import BuildSource
from domain.store_records import (
    REPORTED_LOOKUP_LIMIT,
    BuildRecord,
    HeldAndReported,
    NoSuchTaskError,
    QueueSummary,
    SchemaVersionError,
    StoreError,
    TaskAssignment,
    TaskCredentials,
    TaskRecord,
    TaskStop,
    TaskToRun,
    WorkerCheckIn,
    WorkerRecord,
    hash_token,
    lost_worker_message,
    token_matches,
)

__all__ = [
    "ADMIN_TOKEN_KEY",
    "LOG_CHUNK_LIMIT",
    "REGISTRATION_TOKEN_KEY",
    "REPORTED_LOOKUP_LIMIT",
    "BuildRecord",
    "BuildStore",
    "ControllerStore",
    "HeldAndReported",
    "LogStore",
    "NoSuchTaskError",
    "QueueSummary",
    "SchedulingStore",
    "SchemaVersionError",
    "SettingStore",
    "StoreError",
    "TaskAssignment",
    "TaskCredentials",
    "TaskQueue",
    "TaskRecord",
    "TaskStop",
    "TaskToRun",
    "WorkerCheckIn",
    "WorkerRecord",
    "WorkerRegistry",
    "hash_token",
    "lost_worker_message",
    "token_matches",
]

REGISTRATION_TOKEN_KEY = "registration-token-sha256"
"""Setting holding the SHA-256 of the workers' registration token."""

ADMIN_TOKEN_KEY = "admin-token-sha256"
"""Setting holding the SHA-256 of the HTTP API's admin token."""

LOG_CHUNK_LIMIT = 1024 * 1024
"""Largest piece of log a store keeps (and yields) at once; longer appends are split."""

MAX_LIST_LIMIT = 1000
"""The most builds one ``list_builds`` returns."""


class BuildStore(Protocol):
    """Builds and their tasks as submitted and re-run: what submitting, listing and showing
    builds needs.

    Part of ``ControllerStore``: times come from the store's clock, unknown ids give
    ``None``/``False``/``[]`` unless said otherwise, database failures raise ``StoreError``.
    """

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

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """Return a task."""
        ...

    async def task_to_run(self, task_id: str) -> TaskToRun | None:
        """Return a task with its build's environment, in one statement (None: no such task).

        What every task's ``InitialCommands`` reads: one round trip instead of two.
        """
        ...


class TaskQueue(Protocol):
    """The queue and the lifecycle of a task: claims, status changes, reports, cancellation,
    and the tasks a worker holds.

    Part of ``ControllerStore``: times come from the store's clock, unknown ids give
    ``None``/``False``/``[]`` unless said otherwise, database failures raise ``StoreError``.
    """

    async def queued_tasks(
        self, limit: int | None = None, after_sequence: int = 0
    ) -> list[TaskRecord]:
        """Return ``SCHEDULED`` tasks without a worker, oldest first.

        Only the first ``limit`` (all if ``None``) of those whose ``sequence`` is greater than
        ``after_sequence``: a caller pages through a long queue without loading all of it.
        """
        ...

    async def still_queued(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Return those of ``task_ids`` that are still queued (``SCHEDULED`` without a worker),
        oldest first, in one statement; other and unknown ids are left out."""
        ...

    async def queue_summary(self) -> QueueSummary:
        """Return how many tasks are queued and when the latest of them entered the queue."""
        ...

    async def claim_task(self, task_id: str, worker_name: str) -> TaskRecord | None:
        """Hand a ``SCHEDULED`` unclaimed task to a worker (fresh secrets); ``None`` if taken."""
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

    async def stop_task(
        self, task_id: str, status_if_not_final: TaskStatus, failure_message: str = ""
    ) -> TaskStop:
        """Record a claimed task's ``TaskStopped`` (once; ``stopped`` is ``None`` otherwise),
        finalising it with ``status_if_not_final`` and ``failure_message`` (when given) if it is
        not final yet, and count the task's build's ``CREATED`` tasks, in one statement.

        What a worker's ``TaskStopped`` changes and what deciding whether its build advances
        needs; an unknown task's count is 0.
        """
        ...

    async def request_cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel: an unclaimed task is ``ABORTED`` now, a claimed one is flagged for its worker."""
        ...

    async def tasks_of_worker(self, worker_name: str) -> list[TaskRecord]:
        """Return the tasks that occupy a worker (claimed by it and not stopped), oldest first."""
        ...

    async def held_and_reported(
        self, worker_name: str, reported_task_ids: Sequence[str]
    ) -> HeldAndReported:
        """Return ``tasks_of_worker`` and the reported tasks that do not occupy the worker, in
        one statement: what a look of a poll reads again once its check-in's read is stale."""
        ...

    async def held_task_ids(self, worker_name: str) -> list[str]:
        """Return the ids of ``tasks_of_worker``, oldest first, without reading the tasks."""
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


class LogStore(Protocol):
    """The commands' logs of tasks: appended by workers, read by people.

    Part of ``ControllerStore``: times come from the store's clock, unknown ids give
    ``None``/``False``/``[]`` unless said otherwise, database failures raise ``StoreError``.
    """

    async def append_log(
        self, task_id: str, command: str, data: bytes, offset: int | None = None
    ) -> int:
        """Append bytes to a command's log; return its new size (``NoSuchTaskError`` if none).

        With ``offset`` (where ``data`` starts in the log as the worker sent it), only the bytes
        beyond what the log holds are appended, atomically: a retried chunk is applied once.
        """
        ...

    async def append_log_within_quota(
        self, task_id: str, command: str, data: bytes, offset: int | None, quota_bytes: int
    ) -> AppendedLog:
        """Append what ``plan_log_write`` keeps of ``data`` in one transaction; say what it did.

        The command's and the task's log sizes are measured in the write transaction (appends
        to one task take turns), so a retried chunk is applied once and the quota holds under
        racing appends. ``NoSuchTaskError`` if there is no such task.
        """
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


class WorkerRegistry(Protocol):
    """Registered workers, their sessions and their polls; and who holds a task, to check a
    worker's task calls.

    Part of ``ControllerStore``: times come from the store's clock, unknown ids give
    ``None``/``False``/``[]`` unless said otherwise, database failures raise ``StoreError``.
    """

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

    async def check_in_worker(
        self,
        name: str,
        session_token_hash: str,
        resources_in_use: Mapping[str, float],
        running_task_ids: Sequence[str],
        *,
        queue_limit: int,
    ) -> WorkerCheckIn | None:
        """Record a poll of a worker whose stored session hash is ``session_token_hash``
        (last seen now, with what it reported) and return it with the tasks that occupy it and
        the first ``queue_limit`` queued tasks and the reported tasks that do not occupy it
        (``WorkerCheckIn.reported``): authentication, check-in and the reads of an idle poll in
        one call. ``None``, with nothing recorded, if no worker has that name and
        session (unregistered, or registered again since)."""
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

    async def task_credentials(self, worker_name: str, task_id: str) -> TaskCredentials:
        """Return a worker's session hash and a task's assignment in one read."""
        ...


class SettingStore(Protocol):
    """The controller's settings: generated tokens' hashes, keys and such, by name.

    Part of ``ControllerStore``: times come from the store's clock, unknown ids give
    ``None``/``False``/``[]`` unless said otherwise, database failures raise ``StoreError``.
    """

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting (e.g. ``REGISTRATION_TOKEN_KEY``)."""
        ...

    async def set_setting(self, key: str, value: str) -> None:
        """Store a setting, replacing any previous value."""
        ...

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""
        ...


class SchedulingStore(BuildStore, TaskQueue, WorkerRegistry, Protocol):
    """What the scheduler reads and changes: builds, the queue and task lifecycle, workers."""


class ControllerStore(
    BuildStore, TaskQueue, LogStore, WorkerRegistry, SettingStore, SnapshotStore, Protocol
):
    """Persistent state of the controller: every narrow port; each method is one atomic
    database operation. The composition root opens one and hands each service the ports it
    uses; the SQL stores implement it."""

    async def aclose(self) -> None:
        """Release the database connection(s)."""
        ...
