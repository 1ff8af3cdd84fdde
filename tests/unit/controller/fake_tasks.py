"""In-memory fakes of the store's ``BuildStore`` and ``TaskQueue`` ports, for unit tests.

They keep the guards the SQL stores enforce (``tests/integration/storage`` checks those): a
task is claimed once, a final status never changes, a stopped task is stopped once, a released
task is released once. Each call runs without awaiting anything, so on one event loop it is as
atomic as the SQL stores' transactions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from domain.build import BuildSpec, TaskStatus, initial_status
from domain.policy import SecurityPolicy
from domain.ports import Clock
from domain.protocol import CommandResult
from domain.rerun import NewAttempt, RerunError
from domain.source import BuildSource
from domain.store import (
    REPORTED_LOOKUP_LIMIT,
    BuildRecord,
    HeldAndReported,
    NoSuchTaskError,
    QueueSummary,
    TaskRecord,
    TaskStop,
    TaskToRun,
    WorkerRecord,
    lost_worker_message,
)

MAX_LIST_LIMIT = 1000
"""The most builds one ``list_builds`` returns (as the SQL stores allow)."""

_WAITING = frozenset({TaskStatus.CREATED, TaskStatus.SCHEDULED})


class FakeClock:
    """A clock that moves only when told (wall and monotonic time together)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        """Return the fake wall time."""
        return self.time

    def monotonic(self) -> float:
        """Return the fake monotonic time (the same number)."""
        return self.time

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.time += seconds


@dataclass(slots=True)
class StoredBuild:
    """A build as the fakes keep it: its fields and its tasks' ids in stored order."""

    id: str
    environment: Mapping[str, str]
    created_at: float
    source: BuildSource
    submitted_by: str
    task_ids: list[str] = field(default_factory=list)


class MemoryState:
    """The state the fakes share: one ``MemoryState`` per fake store, as one database."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or FakeClock()
        self.builds: dict[str, StoredBuild] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.workers: dict[str, WorkerRecord] = {}
        self.drains: set[str] = set()  # workers whose pause ends when they register again
        self.logs: dict[tuple[str, str], bytearray] = {}
        self.settings: dict[str, str] = {}
        self._ids = 0
        self._secrets = 0

    def next_id(self) -> int:
        """Return a new id number: ids grow, as the SQL stores' keys do."""
        self._ids += 1
        return self._ids

    def new_secret(self) -> str:
        """Return a secret no other claim got."""
        self._secrets += 1
        return f"secret-{self._secrets}"

    def update(self, task: TaskRecord, **changes: object) -> TaskRecord:
        """Store ``task`` with ``changes`` and a fresh ``updated_at``; return it."""
        changed = replace(task, updated_at=self.clock.now(), **changes)  # type: ignore[arg-type]
        self.tasks[task.id] = changed
        return changed

    def build_record(self, build: StoredBuild) -> BuildRecord:
        """Return a stored build as the store returns one."""
        return BuildRecord(
            id=build.id,
            environment=build.environment,
            created_at=build.created_at,
            tasks=tuple(self.tasks[task_id] for task_id in build.task_ids),
            source=build.source,
            submitted_by=build.submitted_by,
        )

    def occupying(self, worker_name: str) -> list[TaskRecord]:
        """Return the tasks that occupy a worker, oldest first."""
        return [t for t in self.tasks.values() if t.worker == worker_name and t.stopped_at is None]

    def policy(self, security_policy: SecurityPolicy | None) -> SecurityPolicy:
        """Return the policy a worker is stored with (none reported: all is allowed)."""
        return security_policy or SecurityPolicy()


class FakeBuildStore(MemoryState):
    """``domain.store.BuildStore`` in memory."""

    async def create_build(
        self, spec: BuildSpec, source: BuildSource | None = None, *, submitted_by: str = ""
    ) -> BuildRecord:
        """Store a build and its tasks with their initial statuses."""
        now = self.clock.now()
        build = StoredBuild(
            str(self.next_id()), spec.environment, now, source or BuildSource(), submitted_by
        )
        for task in spec.tasks:
            number = self.next_id()
            record = TaskRecord(
                id=str(number),
                build_id=build.id,
                name=task.name,
                status=initial_status(task),
                spec=task,
                sequence=number,
                created_at=now,
                updated_at=now,
                awaiting_trigger=task.manual,
            )
            self.tasks[record.id] = record
            build.task_ids.append(record.id)
        self.builds[build.id] = build
        return self.build_record(build)

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
        """Return up to ``limit`` matching builds, newest first, older than ``before``."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}, got {limit}")
        if before and not before.isdecimal():
            return []
        found = []
        for build in sorted(self.builds.values(), key=lambda b: -int(b.id)):
            record = self.build_record(build)
            if (
                (not repository or build.source.repository == repository)
                and (not branch or build.source.branch == branch)
                and (not submitted_by or build.submitted_by == submitted_by)
                and (not before or int(build.id) < int(before))
                and (status is None or record.status is status)
            ):
                found.append(record)
        return found[:limit]

    async def get_build(self, build_id: str) -> BuildRecord | None:
        """Return a build with its tasks."""
        build = self.builds.get(build_id)
        return None if build is None else self.build_record(build)

    async def build_environment(self, build_id: str) -> Mapping[str, str] | None:
        """Return a build's submitted environment."""
        build = self.builds.get(build_id)
        return None if build is None else dict(build.environment)

    async def list_build_tasks(self, build_id: str) -> list[TaskRecord]:
        """Return a build's tasks in stored order."""
        build = self.builds.get(build_id)
        return [] if build is None else [self.tasks[task_id] for task_id in build.task_ids]

    async def count_build_tasks(self, build_id: str, statuses: Collection[TaskStatus]) -> int:
        """Return how many of a build's tasks have one of ``statuses``."""
        return sum(task.status in statuses for task in await self.list_build_tasks(build_id))

    async def create_attempts(
        self, build_id: str, attempts: Sequence[NewAttempt]
    ) -> list[TaskRecord]:
        """Add new attempts after a build's tasks (``RerunError`` if one was re-run already)."""
        build = self.builds.get(build_id)
        if build is None:
            return []
        for attempt in attempts:
            if not attempt.rerun_of.isdecimal():
                raise RerunError(f"task {attempt.rerun_of!r} is not a stored task")
            if any(task.rerun_of == attempt.rerun_of for task in self.tasks.values()):
                raise RerunError(f"task {attempt.rerun_of} was re-run meanwhile")
        now, created = self.clock.now(), []
        for attempt in attempts:
            number = self.next_id()
            record = TaskRecord(
                id=str(number),
                build_id=build_id,
                name=attempt.spec.name,
                status=attempt.status,
                spec=attempt.spec,
                sequence=number,
                created_at=now,
                updated_at=now,
                awaiting_trigger=attempt.awaiting_trigger,
                attempt=attempt.attempt,
                rerun_of=attempt.rerun_of,
            )
            self.tasks[record.id] = record
            build.task_ids.append(record.id)
            created.append(record)
        return created

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """Return a task."""
        return self.tasks.get(task_id)

    async def task_to_run(self, task_id: str) -> TaskToRun | None:
        """Return a task with its build's environment."""
        task = self.tasks.get(task_id)
        build = None if task is None else self.builds.get(task.build_id)
        return None if task is None or build is None else TaskToRun(task, build.environment)


class FakeTaskQueue(MemoryState):
    """``domain.store.TaskQueue`` in memory."""

    async def queued_tasks(
        self, limit: int | None = None, after_sequence: int = 0
    ) -> list[TaskRecord]:
        """Return queued tasks after ``after_sequence``, oldest first, at most ``limit``."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        queued = [t for t in self._queue() if t.sequence > after_sequence]
        return queued if limit is None else queued[:limit]

    async def held_and_reported(
        self, worker_name: str, reported_task_ids: Sequence[str]
    ) -> HeldAndReported:
        """Return the worker's occupying tasks and the reported tasks that do not occupy it."""
        return held_and_reported(self, worker_name, reported_task_ids)

    async def still_queued(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Return those of ``task_ids`` still queued, oldest first."""
        wanted = set(task_ids)
        return [task for task in self._queue() if task.id in wanted]

    def _queue(self) -> list[TaskRecord]:
        tasks = self.tasks.values()
        return [t for t in tasks if t.status is TaskStatus.SCHEDULED and t.worker is None]

    async def queue_summary(self) -> QueueSummary:
        """Return how many tasks are queued and the latest time one was queued."""
        queue = self._queue()
        return QueueSummary(len(queue), max((t.updated_at for t in queue), default=None))

    async def claim_task(self, task_id: str, worker_name: str) -> TaskRecord | None:
        """Hand a queued task to a worker with fresh secrets; ``None`` if it is not queued."""
        task = self.tasks.get(task_id)
        if task is None or task.status is not TaskStatus.SCHEDULED or task.worker is not None:
            return None
        return self.update(
            task,
            status=TaskStatus.EXECUTING,
            worker=worker_name,
            client_secret=self.new_secret(),
            server_secret=self.new_secret(),
            cancel_requested=False,
            started_at=None,
            stopped_at=None,
        )

    async def set_status(
        self,
        task_id: str,
        expected: Collection[TaskStatus],
        new: TaskStatus,
        failure_message: str = "",
    ) -> bool:
        """Set ``new`` if the status is one of ``expected``."""
        task = self.tasks.get(task_id)
        if task is None or task.status not in expected:
            return False
        self.update(task, status=new, failure_message=failure_message or task.failure_message)
        return True

    async def trigger_task(self, task_id: str) -> TaskRecord | None:
        """Clear a task's ``awaiting_trigger``."""
        task = self.tasks.get(task_id)
        if task is not None and task.awaiting_trigger:
            return self.update(task, awaiting_trigger=False)
        return task

    async def mark_started(self, task_id: str) -> bool:
        """Record the first ``TaskStarted`` of a claimed task that is still running."""
        task = self.tasks.get(task_id)
        if (
            task is None
            or task.status is not TaskStatus.EXECUTING
            or task.worker is None
            or task.started_at is not None
            or task.stopped_at is not None
        ):
            return False
        self.update(task, started_at=self.clock.now())
        return True

    async def record_command_results(self, task_id: str, results: Sequence[CommandResult]) -> None:
        """Merge results by command name; a new name goes after the known ones."""
        task = self.tasks.get(task_id)
        if task is None:
            raise NoSuchTaskError(task_id)
        merged = {result.name: result for result in task.command_results}
        for result in results:
            merged[result.name] = result
        self.update(task, command_results=tuple(merged.values()))

    async def finish_task(
        self, task_id: str, status: TaskStatus, failure_message: str = ""
    ) -> bool:
        """Make a task that is not final yet final."""
        if not status.is_final:
            raise ValueError(f"{status.value} is not a final status")
        task = self.tasks.get(task_id)
        if task is None or task.status.is_final:
            return False
        self.update(task, status=status, failure_message=failure_message or task.failure_message)
        return True

    async def stop_task(
        self, task_id: str, status_if_not_final: TaskStatus, failure_message: str = ""
    ) -> TaskStop:
        """Record a claimed task's ``TaskStopped`` once, finalising it with ``failure_message``
        if needed; count the build's CREATED tasks."""
        if not status_if_not_final.is_final:
            raise ValueError(f"{status_if_not_final.value} is not a final status")
        task = self.tasks.get(task_id)
        stopped = None
        if task is not None and task.worker is not None and task.stopped_at is None:
            changes: dict[str, object] = {"stopped_at": self.clock.now()}
            if not task.status.is_final:
                changes["status"] = status_if_not_final
                changes["failure_message"] = failure_message or task.failure_message
            stopped = self.update(task, **changes)
        build = None if task is None else self.builds.get(task.build_id)
        ids = [] if build is None else build.task_ids
        return TaskStop(stopped, sum(self.tasks[i].status is TaskStatus.CREATED for i in ids))

    async def request_cancel(self, task_id: str) -> TaskRecord | None:
        """Abort an unclaimed waiting task now, or flag a claimed running one for its worker."""
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if task.worker is None and task.status in _WAITING:
            return self.update(task, status=TaskStatus.ABORTED)
        if task.occupies_worker and not task.cancel_requested and not task.status.is_final:
            return self.update(task, cancel_requested=True)
        return task

    async def tasks_of_worker(self, worker_name: str) -> list[TaskRecord]:
        """Return the tasks that occupy a worker, oldest first."""
        return self.occupying(worker_name)

    async def held_task_ids(self, worker_name: str) -> list[str]:
        """Return the ids of the tasks that occupy a worker, oldest first."""
        return [task.id for task in self.occupying(worker_name)]

    async def tasks_to_stop_for(self, worker_name: str) -> list[str]:
        """Return the worker's occupying tasks that were asked to cancel."""
        return [task.id for task in self.occupying(worker_name) if task.cancel_requested]

    async def release_worker(self, worker_name: str) -> list[TaskRecord]:
        """Take every occupying task from a lost worker; return the changed tasks."""
        now, released = self.clock.now(), []
        for task in self.occupying(worker_name):
            unstarted = task.status is TaskStatus.EXECUTING and task.started_at is None
            if unstarted and not task.cancel_requested:
                released.append(
                    self.update(
                        task,
                        status=TaskStatus.SCHEDULED,
                        worker=None,
                        client_secret="",
                        server_secret="",
                    )
                )
            elif task.status.is_final:
                released.append(self.update(task, stopped_at=now))
            elif task.cancel_requested:
                released.append(self.update(task, status=TaskStatus.ABORTED, stopped_at=now))
            else:
                message = lost_worker_message(worker_name)
                released.append(
                    self.update(
                        task, status=TaskStatus.FAILED, failure_message=message, stopped_at=now
                    )
                )
        return released


def held_and_reported(
    state: MemoryState, worker_name: str, reported_task_ids: Sequence[str]
) -> HeldAndReported:
    """Return a worker's occupying tasks and the reported tasks that do not occupy it (as the
    SQL stores' check-in reads them)."""
    held = tuple(state.occupying(worker_name))
    reported: dict[str, TaskRecord | None] = {}
    for task_id in reported_task_ids:
        task = state.tasks.get(task_id)
        if task in held or len(reported) >= REPORTED_LOOKUP_LIMIT:
            continue
        if task is not None and task.worker is None and task.status is TaskStatus.SCHEDULED:
            task = None  # queued without a worker: not the worker's
        reported.setdefault(task_id, task)
    return HeldAndReported(held, reported)
