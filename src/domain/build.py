"""The validated model of a build: its tasks as the controller runs them, and their statuses.

A ``.cirrus.yml`` is turned into a ``BuildSpec`` by an adapter; ``validate_build`` then checks
what only the whole build can tell (unique command names per task, known dependencies, no
cycles, and optionally unique task names). Every refusal is a ``BuildConfigError`` naming the
task and the key at fault.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from domain.errors import CirrusError
from domain.isolation import Isolation, NoneIsolation
from domain.protocol import Command, frozen_float_map, frozen_str_map

DEFAULT_TIMEOUT_SECONDS = 3600
"""A task's time limit when ``timeout_in`` is absent (60m, as in Cirrus)."""

TOP_LEVEL = ""
"""The ``task`` of a ``BuildConfigError`` about the configuration outside any task."""


class BuildConfigError(CirrusError):
    """A build configuration is refused; ``task`` and ``key`` say where, ``message`` what.

    ``message`` names the key itself (``unknown key "scriptt"``), so that ``str()`` reads
    ``task "build": unknown key "scriptt"``. Errors outside any task have ``task == ""`` and read
    ``top level: ...``.
    """

    def __init__(self, task: str, key: str, message: str) -> None:
        where = f'task "{task}"' if task != TOP_LEVEL else "top level"
        super().__init__(f"{where}: {message}")
        self.task = task
        self.key = key
        self.message = message


class TaskStatus(enum.StrEnum):
    """Status of a task (and, for the final ones and ``EXECUTING``, of a build)."""

    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    SKIPPED = "SKIPPED"

    @property
    def is_final(self) -> bool:
        """Return whether the task will never change status again."""
        return self in FINAL_STATUSES


FINAL_STATUSES: frozenset[TaskStatus] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED, TaskStatus.SKIPPED}
)


@dataclass(frozen=True, slots=True, eq=True)
class TaskSpec:
    """One task of a build: where it may run, what it needs and the commands it runs."""

    name: str
    labels: Mapping[str, str] = field(default_factory=frozen_str_map)
    isolation: Isolation = field(default_factory=NoneIsolation)
    resources: Mapping[str, float] = field(default_factory=frozen_float_map)
    environment: Mapping[str, str] = field(default_factory=frozen_str_map)
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    depends_on: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    alias: str = ""
    """``alias:`` (``CIRRUS_TASK_NAME_ALIAS``); other tasks may name it in ``depends_on``."""
    allow_failures: bool = False
    """``allow_failures`` was true: the task failing does not fail the build."""
    skip_reason: str = ""
    """Not empty when ``skip`` was true: the task is created ``SKIPPED`` with this reason."""
    manual: bool = False
    """``trigger_type: manual``: the task waits for a trigger before it is scheduled."""
    auto_cancellation: bool = False
    """``auto_cancellation``: a newer build of the same branch cancels this task."""
    notices: tuple[str, ...] = ()
    """What the controller changed while reading the task, for its user (a variable left
    unset because its value was encrypted by hosted Cirrus CI)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", frozen_str_map(self.labels))
        object.__setattr__(self, "resources", frozen_float_map(self.resources))
        object.__setattr__(self, "environment", frozen_str_map(self.environment))
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "commands", tuple(self.commands))
        object.__setattr__(self, "notices", tuple(self.notices))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable


@dataclass(frozen=True, slots=True, eq=True)
class BuildSpec:
    """A build: its tasks in configuration order and the environment it was submitted with."""

    tasks: tuple[TaskSpec, ...] = ()
    environment: Mapping[str, str] = field(default_factory=frozen_str_map)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "environment", frozen_str_map(self.environment))

    __hash__ = None  # type: ignore[assignment]  # the read-only maps are not hashable

    def task(self, name: str) -> TaskSpec:
        """Return the first task called ``name`` (``KeyError`` if there is none)."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def dependency_indices(self) -> tuple[tuple[int, ...], ...]:
        """Return, per task (same order), the positions of the tasks it waits for.

        As in Cirrus, names need not be unique: depending on a name means waiting for every
        task of that name, and on an ``alias`` for every task that has it.
        """
        positions = self.positions_by_reference()
        return tuple(
            tuple(sorted({i for name in task.depends_on for i in positions.get(name, ())}))
            for task in self.tasks
        )

    def positions_by_reference(self) -> dict[str, list[int]]:
        """Return the positions of the tasks each name or alias refers to, in order."""
        # A task answers to its name and to its alias (Cirrus resolved ``depends_on`` so).
        positions: dict[str, list[int]] = {}
        for index, task in enumerate(self.tasks):
            for reference in dict.fromkeys((task.name, task.alias)):
                if reference:
                    positions.setdefault(reference, []).append(index)
        return positions


def validate_build(build: BuildSpec, *, unique_names: bool = False) -> BuildSpec:
    """Return ``build`` unchanged if it is runnable, else raise the first ``BuildConfigError``.

    Task names may repeat unless ``unique_names``: hosted Cirrus allows it (several unnamed
    ``task:`` entries are all ``main``), and a dependency on a repeated name waits for them all.
    ``depends_on`` may name a task's ``alias`` as well as its name.
    """
    if not build.tasks:
        raise BuildConfigError(TOP_LEVEL, "task", "no tasks defined")
    names: set[str] = set()
    for task in build.tasks:
        _validate_task(task)
        if unique_names and task.name in names:
            raise BuildConfigError(task.name, "name", f'duplicate task name "{task.name}"')
        names.add(task.name)
    positions = build.positions_by_reference()
    for task in build.tasks:
        for dependency in task.depends_on:
            if dependency not in positions:
                raise BuildConfigError(
                    task.name, "depends_on", f'"depends_on" names unknown task "{dependency}"'
                )
    # The cycle check works on names: a dependency on an alias is one on each task that has it.
    graph: dict[str, list[str]] = {}
    for task in build.tasks:
        graph.setdefault(task.name, []).extend(
            build.tasks[i].name for dependency in task.depends_on for i in positions[dependency]
        )
    cycle = find_dependency_cycle(graph)
    if cycle:
        path = " -> ".join(cycle)
        raise BuildConfigError(cycle[0], "depends_on", f'"depends_on" forms a cycle: {path}')
    return build


def initial_status(task: TaskSpec) -> TaskStatus:
    """Return the status a task is created with.

    ``SKIPPED`` when its ``skip`` condition held (final at once), ``CREATED`` while it waits
    for its dependencies or for a manual trigger, else ``SCHEDULED``.
    """
    if task.skip_reason:
        return TaskStatus.SKIPPED
    if task.depends_on or task.manual:
        return TaskStatus.CREATED
    return TaskStatus.SCHEDULED


def counted_status(status: TaskStatus, task: TaskSpec) -> TaskStatus:
    """Return what a task's status counts as for its dependants and for its build's outcome.

    As on Cirrus CI, ``skip`` "marks a task as successful", so a task skipped by its condition
    counts as ``COMPLETED``: its dependants run. An ``allow_failures`` task that ``FAILED`` does
    not affect the build and lets its dependants run too (hosted Cirrus treated such an
    optional task as a successful dependency). Anything else counts as itself; in particular
    a task ``SKIPPED`` because a dependency failed, or an ``ABORTED`` (cancelled) task, still
    holds back its dependants, whether or not it allowed failures.
    """
    if status is TaskStatus.SKIPPED and task.skip_reason:
        return TaskStatus.COMPLETED
    if status is TaskStatus.FAILED and task.allow_failures:
        return TaskStatus.COMPLETED
    return status


def _validate_task(task: TaskSpec) -> None:
    if not task.name:
        raise BuildConfigError(task.name, "name", '"name" must not be empty')
    if task.timeout_seconds <= 0:
        raise BuildConfigError(task.name, "timeout_in", '"timeout_in" must be positive')
    for key, amount in task.resources.items():
        if amount < 0:
            raise BuildConfigError(
                task.name,
                "persistent_worker.resources",
                f'"persistent_worker.resources.{key}" must not be negative',
            )
    commands: set[str] = set()
    for command in task.commands:
        if command.name in commands:
            raise BuildConfigError(
                task.name, command.name, f'duplicate command name "{command.name}"'
            )
        commands.add(command.name)


def find_dependency_cycle(depends_on: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """Return one dependency cycle as ``(a, b, …, a)``, or ``()`` if the graph has none.

    Dependencies on names missing from the mapping are ignored (they are reported elsewhere).
    """
    graph = {name: tuple(deps) for name, deps in depends_on.items()}
    # Iterative depth-first search with colours, so that deep chains cannot hit recursion limits.
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        path: list[str] = [root]
        on_path: set[str] = {root}
        iterators = [iter(graph[root])]
        while iterators:
            dependency = next(iterators[-1], None)
            if dependency is None:
                iterators.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if dependency in on_path:
                start = path.index(dependency)
                return (*path[start:], dependency)
            if dependency in done or dependency not in graph:
                continue
            path.append(dependency)
            on_path.add(dependency)
            iterators.append(iter(graph[dependency]))
    return ()
