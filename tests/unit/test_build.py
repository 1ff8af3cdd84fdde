"""The build model: task specs, their validation and the dependency-cycle search."""

from __future__ import annotations

import pytest

from domain.build import (
    DEFAULT_TIMEOUT_SECONDS,
    BuildConfigError,
    BuildSpec,
    TaskSpec,
    TaskStatus,
    find_dependency_cycle,
    validate_build,
)
from domain.errors import CirrusError
from domain.isolation import NoneIsolation
from domain.protocol import Command, ScriptInstruction


def script(name: str) -> Command:
    return Command(name, ScriptInstruction(("true",)))


def test_a_task_spec_defaults_to_no_isolation_one_hour_and_nothing_else() -> None:
    task = TaskSpec("main")
    assert task.isolation == NoneIsolation()
    assert task.timeout_seconds == DEFAULT_TIMEOUT_SECONDS == 3600
    assert dict(task.labels) == {}
    assert dict(task.resources) == {}
    assert task.depends_on == ()
    assert task.commands == ()


def test_a_task_spec_copies_its_maps_read_only() -> None:
    labels = {"os": "linux"}
    task = TaskSpec("main", labels=labels, resources={"tart-vms": 1})
    labels["os"] = "darwin"
    assert dict(task.labels) == {"os": "linux"}
    assert task.resources["tart-vms"] == 1.0
    with pytest.raises(TypeError):
        task.labels["os"] = "x"  # type: ignore[index]


def test_task_specs_with_equal_content_are_equal() -> None:
    assert TaskSpec("a", labels={"x": "1"}) == TaskSpec("a", labels={"x": "1"})
    assert TaskSpec("a", labels={"x": "1"}) != TaskSpec("a", labels={"x": "2"})


def test_a_build_finds_its_tasks_by_name() -> None:
    build = BuildSpec((TaskSpec("a"), TaskSpec("b")))
    assert build.task("b").name == "b"
    with pytest.raises(KeyError):
        build.task("c")


def test_a_valid_build_is_returned_unchanged() -> None:
    build = BuildSpec((TaskSpec("a", commands=(script("main"),)), TaskSpec("b", depends_on=("a",))))
    assert validate_build(build) is build


def test_a_build_without_tasks_is_refused_at_top_level() -> None:
    with pytest.raises(BuildConfigError) as error:
        validate_build(BuildSpec(()))
    assert str(error.value) == "top level: no tasks defined"
    assert error.value.task == ""


def test_two_tasks_with_one_name_are_allowed_as_in_cirrus() -> None:
    build = BuildSpec((TaskSpec("main"), TaskSpec("main")))
    assert validate_build(build) is build


def test_two_tasks_with_one_name_are_refused_when_names_must_be_unique() -> None:
    with pytest.raises(BuildConfigError) as error:
        validate_build(BuildSpec((TaskSpec("main"), TaskSpec("main"))), unique_names=True)
    assert str(error.value) == 'task "main": duplicate task name "main"'
    assert (error.value.task, error.value.key) == ("main", "name")


def test_depending_on_a_repeated_name_waits_for_every_task_of_that_name() -> None:
    build = BuildSpec(
        (
            TaskSpec("test"),
            TaskSpec("lint"),
            TaskSpec("test"),
            TaskSpec("publish", depends_on=("test", "lint")),
        )
    )
    assert build.dependency_indices() == ((), (), (), (0, 1, 2))


def test_a_cycle_through_a_repeated_name_is_found() -> None:
    build = BuildSpec(
        (TaskSpec("a"), TaskSpec("a", depends_on=("b",)), TaskSpec("b", depends_on=("a",)))
    )
    with pytest.raises(BuildConfigError, match="cycle: a -> b -> a"):
        validate_build(build)


def test_a_dependency_on_an_unknown_task_names_the_task_and_key() -> None:
    with pytest.raises(BuildConfigError) as error:
        validate_build(BuildSpec((TaskSpec("build", depends_on=("lint",)),)))
    assert str(error.value) == 'task "build": "depends_on" names unknown task "lint"'
    assert error.value.key == "depends_on"


def test_a_dependency_cycle_is_refused_with_its_path() -> None:
    build = BuildSpec(
        (
            TaskSpec("a", depends_on=("b",)),
            TaskSpec("b", depends_on=("c",)),
            TaskSpec("c", depends_on=("a",)),
        )
    )
    with pytest.raises(BuildConfigError) as error:
        validate_build(build)
    assert str(error.value) == 'task "a": "depends_on" forms a cycle: a -> b -> c -> a'


def test_a_task_depending_on_itself_is_a_cycle() -> None:
    with pytest.raises(BuildConfigError, match="cycle: a -> a"):
        validate_build(BuildSpec((TaskSpec("a", depends_on=("a",)),)))


def test_two_commands_with_one_name_in_a_task_are_refused() -> None:
    task = TaskSpec("a", commands=(script("build"), script("build")))
    with pytest.raises(BuildConfigError) as error:
        validate_build(BuildSpec((task,)))
    assert str(error.value) == 'task "a": duplicate command name "build"'


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(BuildConfigError, match='"timeout_in" must be positive'):
        validate_build(BuildSpec((TaskSpec("a", timeout_seconds=0),)))


def test_a_negative_resource_is_refused() -> None:
    with pytest.raises(BuildConfigError, match='tart-vms" must not be negative'):
        validate_build(BuildSpec((TaskSpec("a", resources={"tart-vms": -1}),)))


def test_an_empty_task_name_is_refused() -> None:
    with pytest.raises(BuildConfigError, match='"name" must not be empty'):
        validate_build(BuildSpec((TaskSpec(""),)))


def test_build_config_errors_are_cirrus_errors() -> None:
    assert issubclass(BuildConfigError, CirrusError)


def test_no_cycle_is_found_in_a_diamond() -> None:
    graph = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
    assert find_dependency_cycle(graph) == ()


def test_a_cycle_behind_an_acyclic_prefix_is_found() -> None:
    graph = {"start": ("x",), "x": ("y",), "y": ("x",)}
    assert find_dependency_cycle(graph) == ("x", "y", "x")


def test_a_long_chain_does_not_exhaust_the_stack() -> None:
    graph = {f"t{i}": (f"t{i + 1}",) for i in range(5000)}
    assert find_dependency_cycle(graph) == ()
    graph["t5000"] = ("t0",)
    assert len(find_dependency_cycle(graph)) == 5002


def test_final_statuses_are_the_four_outcomes() -> None:
    final = {status for status in TaskStatus if status.is_final}
    assert final == {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.ABORTED,
        TaskStatus.SKIPPED,
    }
    assert str(TaskStatus.SCHEDULED) == "SCHEDULED"
