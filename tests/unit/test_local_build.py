"""``cirrus run``'s changes to a parsed build: ``TASK`` with its dependencies, and ``--dirty``."""

from __future__ import annotations

import pytest

from domain.build import BuildConfigError, BuildSpec, TaskSpec
from domain.isolation import ContainerIsolation, ContainerVolume, NoneIsolation, TartIsolation
from domain.local_build import DIRTY_CONTAINER_DIR, in_project_directory, select_tasks


def spec(*tasks: TaskSpec) -> BuildSpec:
    return BuildSpec(tasks=tasks, environment={"A": "1"})


BUILD = spec(
    TaskSpec(name="lint"),
    TaskSpec(name="compile", alias="cc"),
    TaskSpec(name="test", depends_on=("cc",)),
    TaskSpec(name="package", depends_on=("test", "lint")),
    TaskSpec(name="docs"),
)


def names(build: BuildSpec) -> list[str]:
    return [task.name for task in build.tasks]


def test_a_task_is_kept_with_its_dependencies_transitively_and_in_file_order() -> None:
    assert names(select_tasks(BUILD, "package")) == ["lint", "compile", "test", "package"]


def test_a_dependency_named_by_alias_is_kept() -> None:
    assert names(select_tasks(BUILD, "test")) == ["compile", "test"]


def test_a_task_without_dependencies_runs_alone_and_the_environment_stays() -> None:
    selected = select_tasks(BUILD, "docs")
    assert names(selected) == ["docs"]
    assert dict(selected.environment) == {"A": "1"}


def test_every_task_of_a_repeated_name_is_kept() -> None:
    build = spec(TaskSpec(name="main"), TaskSpec(name="main"), TaskSpec(name="other"))
    assert names(select_tasks(build, "main")) == ["main", "main"]


def test_the_name_is_matched_case_insensitively_when_no_task_has_it_exactly() -> None:
    assert names(select_tasks(BUILD, "Docs")) == ["docs"]


def test_an_unknown_name_is_refused_listing_the_tasks_there_are() -> None:
    with pytest.raises(BuildConfigError) as caught:
        select_tasks(BUILD, "deploy")
    assert str(caught.value) == (
        'task "deploy": no such task; the tasks are: lint, compile, test, package, docs'
    )


def test_dirty_host_tasks_start_in_the_project_directory() -> None:
    changed = in_project_directory(spec(TaskSpec(name="t")), "/home/me/project")
    assert changed.tasks[0].environment["CIRRUS_WORKING_DIR"] == "/home/me/project"
    assert changed.tasks[0].isolation == NoneIsolation()


def test_dirty_container_tasks_get_the_project_mounted_as_their_working_directory() -> None:
    own = ContainerVolume(source="/cache", target="/cache")
    task = TaskSpec(name="t", isolation=ContainerIsolation(image="alpine", volumes=(own,)))

    changed = in_project_directory(spec(task), "/home/me/project").tasks[0]

    assert isinstance(changed.isolation, ContainerIsolation)
    assert changed.isolation.volumes == (
        own,
        ContainerVolume(source="/home/me/project", target=DIRTY_CONTAINER_DIR),
    )
    assert changed.environment["CIRRUS_WORKING_DIR"] == DIRTY_CONTAINER_DIR


def test_dirty_keeps_a_working_directory_the_task_sets_and_leaves_vms_alone() -> None:
    own = TaskSpec(name="own", environment={"CIRRUS_WORKING_DIR": "/elsewhere"})
    vm = TaskSpec(name="vm", isolation=TartIsolation(image="macos"))

    changed = in_project_directory(spec(own, vm), "/p")

    assert changed.tasks[0].environment["CIRRUS_WORKING_DIR"] == "/elsewhere"
    assert changed.tasks[1] == vm
