"""Scheduling: which queued tasks a polling worker gets, why a task still waits, build progress.

Concurrency follows hosted Cirrus CI (cirrus-ci-docs#1017, "Resource management"):

* a worker that declares no resources runs one task at a time;
* a worker that declares resources runs either one resource-less task alone, or any number of
  tasks with resources as long as they fit its free resources (free ≥ requested for every
  requested key, a key the worker lacks counting as 0).

A task "has resources" when it requests a positive amount of something; ``{tart-vms: 0}``
requests nothing and is resource-less. A task with resources never fits a worker that lacks
them, whatever its concurrency.

Order: queued tasks are offered in submission order (FIFO), but a task that does not fit the
polling worker does not block later ones that do, as on hosted Cirrus, where a queued task
waits for a fitting worker while others run. The price is that a resource-less task can wait
behind a steady stream of smaller tasks on a resource-aware worker; ``pending_reason`` says so.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from domain.build import FINAL_STATUSES, TaskStatus
from domain.errors import PolicyViolation
from domain.isolation import (
    ContainerIsolation,
    Isolation,
    NoneIsolation,
    TartIsolation,
    VetuIsolation,
)
from domain.policy import (
    ContainerPolicy,
    SecurityPolicy,
    TartPolicy,
    VetuPolicy,
    additional_container_refusal,
    check_isolation,
    images_allowed,
    isolation_policy,
)
from domain.protocol import frozen_float_map, frozen_str_map
from domain.resources import fits, free_resources


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What the scheduler needs to know about one registered worker.

    ``resources_in_use`` is the sum of the resources of the tasks the controller handed to the
    worker and has not yet seen stopped (not the possibly older figure of the worker's last
    poll), and ``running_task_ids`` lists those tasks. Running tasks that use no resources at
    all are resource-less ones, which occupy a resource-aware worker alone. ``policy`` is the
    security policy the worker reported when it registered (the default allows everything).
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    resources_total: Mapping[str, float] = field(default_factory=frozen_float_map)
    resources_in_use: Mapping[str, float] = field(default_factory=frozen_float_map)
    running_task_ids: tuple[str, ...] = ()
    paused: bool = False
    online: bool = True
    policy: SecurityPolicy = field(default_factory=SecurityPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_str_map(self.labels))
        object.__setattr__(self, "resources_total", frozen_float_map(self.resources_total))
        object.__setattr__(self, "resources_in_use", frozen_float_map(self.resources_in_use))
        object.__setattr__(self, "running_task_ids", tuple(self.running_task_ids))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A ``SCHEDULED`` task waiting for a worker; ``sequence`` grows with submission order."""

    id: str
    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    resources: Mapping[str, float] = field(default_factory=frozen_float_map)
    sequence: int = 0
    isolation: Isolation = field(default_factory=NoneIsolation)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_str_map(self.labels))
        object.__setattr__(self, "resources", frozen_float_map(self.resources))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable


def uses_resources(resources: Mapping[str, float]) -> bool:
    """Return whether a resource map asks for (or declares) a positive amount of anything."""
    return any(amount > 0 for amount in resources.values())


def labels_match(worker_labels: Mapping[str, str], task_labels: Mapping[str, str]) -> bool:
    """Return whether the worker has every ``key=value`` label the task asks for."""
    return all(worker_labels.get(key) == value for key, value in task_labels.items())


def policy_admits(policy: SecurityPolicy, isolation: Isolation) -> bool:
    """Return whether a worker with ``policy`` would run a task in ``isolation`` (never hand a
    worker a task it must refuse)."""
    try:
        check_isolation(policy, isolation)
    except PolicyViolation:
        return False
    return True


def _refused_part(policies: Sequence[SecurityPolicy], isolation: Isolation) -> str:
    # Names what the workers' policies lack, the coarsest part first.
    sections = [isolation_policy(policy, isolation.kind) for policy in policies]
    if all(section is None for section in sections):
        return f"{isolation.kind} isolation"
    if isinstance(isolation, ContainerIsolation | TartIsolation | VetuIsolation) and not any(
        isinstance(section, ContainerPolicy | TartPolicy | VetuPolicy)
        and images_allowed(section.allowed_images, isolation.image)
        for section in sections
    ):
        return f"{isolation.kind} image {isolation.image!r}"
    if isinstance(isolation, ContainerIsolation) and not any(
        isinstance(section, ContainerPolicy)
        and not additional_container_refusal(section, isolation)
        for section in sections
    ):
        return "the additional containers of this container isolation (image or privileged)"
    return f"the volumes of this {isolation.kind} isolation"


def _exclusively_busy(worker: WorkerView) -> bool:
    # A worker that runs something while using no resources runs a resource-less task, or is a
    # worker without resources, which runs one task at a time anyway.
    return bool(worker.running_task_ids) and not uses_resources(worker.resources_in_use)


def _could_take_now(worker: WorkerView, task: QueuedTask) -> bool:
    if uses_resources(task.resources):
        return not _exclusively_busy(worker) and fits(
            free_resources(worker.resources_total, worker.resources_in_use), task.resources
        )
    return not worker.running_task_ids


def assign(
    queued: Sequence[QueuedTask], workers: Sequence[WorkerView], polling_worker: str
) -> list[str]:
    """Return the ids of the queued tasks to hand to ``polling_worker`` now, in FIFO order."""
    worker = next((w for w in workers if w.name == polling_worker), None)
    if worker is None or worker.paused or not worker.online:
        return []
    in_use = dict(worker.resources_in_use)
    running = len(worker.running_task_ids)
    exclusive = _exclusively_busy(worker)
    assigned: list[str] = []
    for task in sorted(queued, key=lambda queued_task: queued_task.sequence):
        if exclusive:
            break
        if not labels_match(worker.labels, task.labels):
            continue
        if not policy_admits(worker.policy, task.isolation):
            continue
        if uses_resources(task.resources):
            if not fits(free_resources(worker.resources_total, in_use), task.resources):
                continue
            for key, amount in task.resources.items():
                in_use[key] = in_use.get(key, 0.0) + amount
        elif running:
            continue
        else:
            exclusive = True
        running += 1
        assigned.append(task.id)
    return assigned


def can_take(worker: WorkerView, task: QueuedTask) -> bool:
    """Return whether ``worker`` may start ``task`` now: ``assign``'s rules for one task."""
    return (
        not worker.paused
        and worker.online
        and labels_match(worker.labels, task.labels)
        and _could_take_now(worker, task)
        and policy_admits(worker.policy, task.isolation)
    )


def with_task(worker: WorkerView, task: QueuedTask) -> WorkerView:
    """Return ``worker`` as it will be once it also runs ``task``."""
    in_use = dict(worker.resources_in_use)
    for key, amount in task.resources.items():
        in_use[key] = in_use.get(key, 0.0) + amount
    return replace(
        worker, resources_in_use=in_use, running_task_ids=(*worker.running_task_ids, task.id)
    )


def choose_workers(tasks: Sequence[QueuedTask], workers: Sequence[WorkerView]) -> dict[str, str]:
    """Return, for each of ``tasks`` some worker can take now, the name of the one to offer it.

    One decision for all of them: tasks in FIFO order, each to the first worker (in the given
    order) that can take it, as that worker will be with the tasks chosen for it before. A
    task no worker can take now is left out (it waits in the queue for a poll).
    """
    current = list(workers)
    chosen: dict[str, str] = {}
    for task in sorted(tasks, key=lambda queued_task: queued_task.sequence):
        for index, worker in enumerate(current):
            if can_take(worker, task):
                chosen[task.id] = worker.name
                current[index] = with_task(worker, task)
                break
    return chosen


def silence(last_seen: float, watching_since: float, now: float) -> float:
    """Return how long a worker has been silent as far as the controller could tell by ``now``.

    Silence counts from the later of the worker's last call (``last_seen``) and the moment the
    controller could hear it again (``watching_since``: when it started, or when its database
    came back): while the controller was away, a worker's calls could not arrive, so a worker
    that comes back within the liveness window after an outage keeps its tasks.
    """
    return now - max(last_seen, watching_since)


def is_alive(last_seen: float, watching_since: float, now: float, window: float) -> bool:
    """Return whether a worker's ``silence`` is still within the liveness ``window``."""
    return silence(last_seen, watching_since, now) <= window


def _format_map(values: Mapping[str, str] | Mapping[str, float]) -> str:
    return ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in sorted(values.items())
    )


class WaitKind(StrEnum):
    """What keeps a queued task from a worker, as a category (metrics, ``cirrus run``)."""

    NO_WORKERS = "no_workers"
    NO_WORKER_WITH_LABELS = "no_worker_with_labels"
    NO_WORKER_POLICY = "no_worker_policy"
    WORKERS_OFFLINE = "workers_offline"
    WORKERS_PAUSED = "workers_paused"
    WORKERS_BUSY = "workers_busy"
    WAITING_FOR_POLL = "waiting_for_poll"
    NO_WORKER_WITH_RESOURCES = "no_worker_with_resources"
    NOT_ENOUGH_RESOURCES = "not_enough_resources"


FIXED_BY_THE_WORKERS = frozenset(
    {WaitKind.NO_WORKER_WITH_LABELS, WaitKind.NO_WORKER_POLICY, WaitKind.NO_WORKER_WITH_RESOURCES}
)
"""Kinds that only another worker can change: labels, policy and total resources are fixed for
a worker's session (``cirrus run``'s one embedded worker never takes such a task)."""


@dataclass(frozen=True, slots=True)
class PendingReason:
    """Why a queued task has no worker yet: its kind and the sentence for a user."""

    kind: WaitKind
    text: str


def pending_reason(task: QueuedTask, workers: Sequence[WorkerView]) -> str:
    """Return why ``task`` has no worker yet, in words for a user."""
    return why_pending(task, workers).text


def why_pending(task: QueuedTask, workers: Sequence[WorkerView]) -> PendingReason:
    """Return why ``task`` has no worker yet: the kind, and the words for a user."""
    labelled = [w for w in workers if labels_match(w.labels, task.labels)]
    if not labelled:
        # Empty labels match every worker, so here either the task has labels or none exist.
        if not task.labels:
            return PendingReason(WaitKind.NO_WORKERS, "no worker is registered")
        return PendingReason(
            WaitKind.NO_WORKER_WITH_LABELS, f"no worker with labels {_format_map(task.labels)}"
        )
    matching = [w for w in labelled if policy_admits(w.policy, task.isolation)]
    if not matching:
        refused = _refused_part([w.policy for w in labelled], task.isolation)
        among = f" (of the workers with labels {_format_map(task.labels)})" if task.labels else ""
        return PendingReason(
            WaitKind.NO_WORKER_POLICY, f"no worker's security policy allows {refused}{among}"
        )
    online = [w for w in matching if w.online]
    if not online:
        return PendingReason(WaitKind.WORKERS_OFFLINE, "all matching workers are offline")
    active = [w for w in online if not w.paused]
    if not active:
        if len(online) < len(matching):
            return PendingReason(
                WaitKind.WORKERS_PAUSED, "all matching workers are paused or offline"
            )
        return PendingReason(WaitKind.WORKERS_PAUSED, "all matching workers are paused")
    if not uses_resources(task.resources):
        if all(w.running_task_ids for w in active):
            return PendingReason(WaitKind.WORKERS_BUSY, "all matching workers are busy")
        return PendingReason(WaitKind.WAITING_FOR_POLL, "waiting for a matching worker to poll")
    capable = [w for w in active if fits(w.resources_total, task.resources)]
    if not capable:
        return PendingReason(
            WaitKind.NO_WORKER_WITH_RESOURCES,
            f"no matching worker has {_format_map(task.resources)} in total",
        )
    if any(_could_take_now(w, task) for w in capable):
        return PendingReason(WaitKind.WAITING_FOR_POLL, "waiting for a matching worker to poll")
    short = sorted(
        {
            key
            for w in capable
            if not _exclusively_busy(w)
            for key, free in free_resources(w.resources_total, w.resources_in_use).items()
            if free < task.resources.get(key, 0.0)
        }
    )
    if not short:
        return PendingReason(WaitKind.WORKERS_BUSY, "all matching workers are busy")
    return PendingReason(
        WaitKind.NOT_ENOUGH_RESOURCES, f"not enough free {', '.join(short)} on any worker"
    )


_DEPENDENCY_FAILURES = FINAL_STATUSES - {TaskStatus.COMPLETED}


def advance_dependencies(
    statuses: Mapping[str, TaskStatus],
    depends_on: Mapping[str, Iterable[str]],
    held: Collection[str] = frozenset(),
) -> dict[str, TaskStatus]:
    """Return the new status of every ``CREATED`` task whose dependencies have settled.

    A task becomes ``SCHEDULED`` once all its dependencies ``COMPLETED`` (at once if it has
    none), and ``SKIPPED`` as soon as one of them failed, was aborted or skipped. Skips cascade
    within one call. Tasks are keyed alike in both maps (by id or by name); a dependency missing
    from ``statuses`` keeps its dependants waiting. ``held`` tasks (waiting for a manual
    trigger) are never ``SCHEDULED``, but are skipped like the others. Callers pass what each
    status counts as (``domain.build.counted_status``).
    """
    current = dict(statuses)
    changes: dict[str, TaskStatus] = {}
    changed = True
    while changed:
        changed = False
        for task, status in list(current.items()):
            if status is not TaskStatus.CREATED:
                continue
            dependency_statuses = [current.get(dep) for dep in depends_on.get(task, ())]
            new: TaskStatus | None = None
            if any(
                s in FINAL_STATUSES and s is not TaskStatus.COMPLETED for s in dependency_statuses
            ):
                new = TaskStatus.SKIPPED
            elif task not in held and all(s is TaskStatus.COMPLETED for s in dependency_statuses):
                new = TaskStatus.SCHEDULED
            if new is not None:
                current[task] = new
                changes[task] = new
                changed = True
    return changes


def build_status(task_statuses: Iterable[TaskStatus]) -> TaskStatus:
    """Return a build's status: ``EXECUTING`` until every task is final, then the outcome.

    The outcome is ``COMPLETED`` if every task completed, else ``FAILED``, or ``ABORTED`` when a
    task was aborted and none failed. A build without tasks has nothing left to do: ``COMPLETED``.
    Callers pass what each status counts as (``domain.build.counted_status``) and leave out
    the tasks still waiting for a manual trigger (``BuildRecord.status``).
    """
    statuses = list(task_statuses)
    if not all(status in FINAL_STATUSES for status in statuses):
        return TaskStatus.EXECUTING
    if all(status is TaskStatus.COMPLETED for status in statuses):
        return TaskStatus.COMPLETED
    if TaskStatus.FAILED not in statuses and TaskStatus.ABORTED in statuses:
        return TaskStatus.ABORTED
    return TaskStatus.FAILED
