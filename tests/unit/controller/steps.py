"""Steps the controller's unit tests share: registering workers, submitting builds, reporting."""

from __future__ import annotations

from collections.abc import Mapping

from domain.build import BuildSpec, TaskSpec
from domain.protocol import CommandResult, CommandStatus
from domain.store import BuildRecord, SchedulingStore, TaskAssignment, TaskRecord, hash_token

LINUX = {"os": "linux"}


async def register(
    store: SchedulingStore, name: str = "w1", labels: Mapping[str, str] = LINUX
) -> None:
    """Register a worker with 4 CPUs and ``labels``."""
    await store.upsert_worker(name, labels, {"cpu": 4.0}, hash_token(f"session of {name}"))


async def submit(store: SchedulingStore, *tasks: TaskSpec) -> BuildRecord:
    """Store a build of ``tasks`` (one Linux task ``main`` if none is given)."""
    spec = BuildSpec(tasks=tasks or (TaskSpec(name="main", labels=LINUX),))
    return await store.create_build(spec)


def assignment(task: TaskRecord) -> TaskAssignment:
    """Return what an authenticated call about ``task`` carries."""
    return TaskAssignment(task.id, task.build_id, task.worker, task.client_secret)


def result(name: str, status: CommandStatus = CommandStatus.COMPLETED) -> CommandResult:
    """Return a command result as a worker reports it."""
    return CommandResult(name=name, status=status, duration_in_nanos=1_000_000)
