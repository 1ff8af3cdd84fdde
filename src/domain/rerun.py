"""Re-running tasks: attempts of a task, and which new attempts a re-run creates.

A re-run never changes a task that ran: it adds a new task record to the same build, the next
*attempt* of the task, linked to the attempt it re-runs (``rerun_of``). The attempts of one task
form a chain from the first (configuration position, ``rerun_of`` empty) to the latest; a build
counts, schedules and shows its latest attempts, and dependencies resolve to them. Dependants of
a re-run task run again too: every final task that waits for it, directly or not, gets a new
attempt, which waits for the new attempt of its dependency. A task that is not final cannot be
re-run; a dependant that is not final yet is left alone (it waits for the latest attempts).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from domain.build import BuildSpec, TaskSpec, TaskStatus, initial_status
from domain.errors import CirrusError

RERUN_FAILED_STATUSES: frozenset[TaskStatus] = frozenset({TaskStatus.FAILED, TaskStatus.ABORTED})
"""What ``cirrus build rerun --failed`` re-runs (their dependants follow)."""


class RerunError(CirrusError):
    """A re-run is refused (a task not final, an older attempt, nothing to re-run)."""


class Attempt(Protocol):
    """What the rules read of a stored task (``domain.store.TaskRecord`` is one)."""

    @property
    def id(self) -> str:
        """The task's id."""
        ...

    @property
    def status(self) -> TaskStatus:
        """The task's status."""
        ...

    @property
    def spec(self) -> TaskSpec:
        """The task as configured."""
        ...

    @property
    def attempt(self) -> int:
        """1 for a task as submitted, n for its (n-1)th re-run."""
        ...

    @property
    def rerun_of(self) -> str | None:
        """The id of the attempt this one re-runs (``None`` for the first)."""
        ...


AttemptT = TypeVar("AttemptT", bound=Attempt)


@dataclass(frozen=True, slots=True)
class NewAttempt:
    """A task record a re-run creates: the next attempt of ``rerun_of``."""

    rerun_of: str
    attempt: int
    spec: TaskSpec
    status: TaskStatus
    awaiting_trigger: bool = False

    __hash__ = None  # type: ignore[assignment]  # the spec's read-only maps are not hashable


def split_attempts(tasks: Iterable[AttemptT]) -> tuple[list[AttemptT], list[AttemptT]]:
    """Return a build's tasks as (latest attempts in configuration order, earlier attempts).

    ``tasks`` holds every attempt, the first attempts in configuration order before later ones
    (the order stores keep). An attempt whose chain is broken counts as a latest one.
    """
    ordered = list(tasks)
    successor = {task.rerun_of: task for task in ordered if task.rerun_of is not None}
    known = {task.id for task in ordered}
    latest: list[AttemptT] = []
    for task in ordered:
        if task.rerun_of is not None and task.rerun_of in known:
            continue  # reached from the first attempt of its chain
        current = task
        seen = {current.id}
        while current.id in successor and successor[current.id].id not in seen:
            current = successor[current.id]
            seen.add(current.id)
        latest.append(current)
    latest_ids = {task.id for task in latest}
    return latest, [task for task in ordered if task.id not in latest_ids]


def attempts_of(tasks: Iterable[AttemptT], task_id: str) -> list[AttemptT]:
    """Return every attempt of the task ``task_id`` is an attempt of, first to latest."""
    ordered = list(tasks)
    by_id = {task.id: task for task in ordered}
    if task_id not in by_id:
        return []
    first = by_id[task_id]
    seen = {first.id}
    while first.rerun_of is not None and first.rerun_of in by_id and first.rerun_of not in seen:
        first = by_id[first.rerun_of]
        seen.add(first.id)
    successor = {task.rerun_of: task for task in ordered if task.rerun_of is not None}
    chain = [first]
    while chain[-1].id in successor and successor[chain[-1].id] not in chain:
        chain.append(successor[chain[-1].id])
    return chain


def plan_rerun(tasks: Sequence[Attempt], chosen: Collection[str]) -> list[NewAttempt]:
    """Return the attempts that re-running the ``chosen`` tasks of a build creates.

    ``tasks`` are all of the build's attempts. Each chosen task must be a latest attempt and
    final (else ``RerunError``); its final dependants, direct or not, are re-run too. The new
    attempts come in configuration order. A re-run task that is ``trigger_type: manual`` runs
    without a new trigger (asking for the re-run is the trigger); a manual dependant waits for
    one again.
    """
    latest, earlier = split_attempts(tasks)
    earlier_ids = {task.id: task for task in earlier}
    position = {task.id: index for index, task in enumerate(latest)}
    for task_id in chosen:
        if task_id in earlier_ids:
            newer = attempts_of(tasks, task_id)[-1]
            raise RerunError(
                f"task {task_id} is an earlier attempt; re-run its latest attempt {newer.id}"
            )
        if task_id not in position:
            raise RerunError(f"task {task_id} is not a task of this build")
        status = latest[position[task_id]].status
        if not status.is_final:
            raise RerunError(f"task {task_id} is {status.value}: only a final task can be re-run")
    dependants = _dependants(latest)
    selected = {position[task_id] for task_id in chosen}
    pending = list(selected)
    while pending:
        for index in dependants[pending.pop()]:
            if index not in selected and latest[index].status.is_final:
                selected.add(index)
                pending.append(index)
    explicit = {position[task_id] for task_id in chosen}
    plans = []
    for index in sorted(selected):
        task = latest[index]
        awaiting = task.spec.manual and index not in explicit
        status = initial_status(task.spec)
        if status is TaskStatus.CREATED and not task.spec.depends_on and not awaiting:
            status = TaskStatus.SCHEDULED  # a manual task re-run on purpose: no trigger wait
        plans.append(NewAttempt(task.id, task.attempt + 1, task.spec, status, awaiting))
    return plans


def build_rerun_choice(tasks: Sequence[Attempt], *, failed_only: bool) -> list[str]:
    """Return the tasks ``build rerun`` re-runs: every final latest attempt, or only the
    ``FAILED``/``ABORTED`` ones (``RerunError`` if there is none)."""
    latest, _ = split_attempts(tasks)
    wanted = RERUN_FAILED_STATUSES if failed_only else None
    chosen = [
        task.id
        for task in latest
        if task.status.is_final and (wanted is None or task.status in wanted)
    ]
    if not chosen:
        what = "failed or aborted" if failed_only else "final"
        raise RerunError(f"the build has no {what} task to re-run")
    return chosen


def _dependants(latest: Sequence[Attempt]) -> list[list[int]]:
    """Return, per latest attempt, the positions of the attempts that wait for it."""
    indices = BuildSpec(tasks=tuple(task.spec for task in latest)).dependency_indices()
    dependants: list[list[int]] = [[] for _ in latest]
    for index, wanted in enumerate(indices):
        for dependency in wanted:
            dependants[dependency].append(index)
    return dependants
