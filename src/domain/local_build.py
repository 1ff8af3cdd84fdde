"""What ``cirrus run`` does to a parsed build before the embedded controller stores it.

``select_tasks`` keeps the task named on the command line and every task it depends on,
transitively (the original ``cirrus run TASK`` ran the named task alone; this project's
contract adds its dependencies, so that ``cirrus run test`` still builds first). The name is
matched exactly, else case-insensitively, as the original compared lowercased names.

``in_project_directory`` is ``--dirty``: host tasks start in the project directory itself, and
container tasks get it bind-mounted at ``DIRTY_CONTAINER_DIR``, their working directory.
"""

from __future__ import annotations

import dataclasses

from domain.build import BuildConfigError, BuildSpec, TaskSpec
from domain.isolation import ContainerIsolation, ContainerVolume, NoneIsolation

DIRTY_CONTAINER_DIR = "/tmp/cirrus-ci-build"
"""Where ``--dirty`` mounts the project in a container (the original's working directory)."""

WORKING_DIR_VARIABLE = "CIRRUS_WORKING_DIR"


def select_tasks(spec: BuildSpec, name: str) -> BuildSpec:
    """Return ``spec`` with only the tasks called ``name`` and their dependencies.

    A name no task has raises ``BuildConfigError`` listing the names there are.
    """
    chosen = [i for i, task in enumerate(spec.tasks) if task.name == name]
    if not chosen:
        folded = name.casefold()
        chosen = [i for i, task in enumerate(spec.tasks) if task.name.casefold() == folded]
    if not chosen:
        names = ", ".join(dict.fromkeys(task.name for task in spec.tasks))
        raise BuildConfigError(name, "task", f"no such task; the tasks are: {names}")
    dependencies = spec.dependency_indices()
    kept: set[int] = set()
    pending = list(chosen)
    while pending:
        index = pending.pop()
        if index not in kept:
            kept.add(index)
            pending.extend(dependencies[index])
    tasks = tuple(task for i, task in enumerate(spec.tasks) if i in kept)
    return dataclasses.replace(spec, tasks=tasks)


def in_project_directory(spec: BuildSpec, project_dir: str) -> BuildSpec:
    """Return ``spec`` with host and container tasks working in ``project_dir`` itself.

    A ``CIRRUS_WORKING_DIR`` the task sets itself is kept; VM tasks are left as they are (the
    project is not shared into a VM).
    """
    return dataclasses.replace(
        spec, tasks=tuple(_in_project_directory(task, project_dir) for task in spec.tasks)
    )


def _in_project_directory(task: TaskSpec, project_dir: str) -> TaskSpec:
    isolation = task.isolation
    if isinstance(isolation, ContainerIsolation):
        mount = ContainerVolume(source=project_dir, target=DIRTY_CONTAINER_DIR)
        isolation = dataclasses.replace(isolation, volumes=(*isolation.volumes, mount))
        working_dir = DIRTY_CONTAINER_DIR
    elif isinstance(isolation, NoneIsolation):
        working_dir = project_dir
    else:
        return task
    environment = {WORKING_DIR_VARIABLE: working_dir, **task.environment}
    return dataclasses.replace(task, isolation=isolation, environment=environment)
