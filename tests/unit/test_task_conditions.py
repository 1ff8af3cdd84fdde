"""Task conditions in the domain: ``skip``, ``allow_failures``, manual triggers and ``alias``.

What a task is created as, what its status counts as for its dependants and its build, how a
held (manual) task advances, and ``depends_on`` naming an alias.
"""

from __future__ import annotations

import pytest

from domain.build import (
    BuildConfigError,
    BuildSpec,
    TaskSpec,
    TaskStatus,
    counted_status,
    initial_status,
    validate_build,
)
from domain.scheduling import advance_dependencies
from domain.store import BuildRecord, TaskRecord

S = TaskStatus


def record(
    task_id: str, status: TaskStatus, spec: TaskSpec | None = None, *, awaiting: bool = False
) -> TaskRecord:
    return TaskRecord(
        id=task_id,
        build_id="1",
        name=task_id,
        status=status,
        spec=spec or TaskSpec(task_id),
        sequence=int(task_id) if task_id.isdecimal() else 0,
        created_at=0.0,
        updated_at=0.0,
        awaiting_trigger=awaiting,
    )


def build_of(*tasks: TaskRecord) -> BuildRecord:
    return BuildRecord(id="1", environment={}, created_at=0.0, tasks=tasks)


# --- what a task is created as --------------------------------------------------------------


def test_a_task_whose_skip_condition_held_is_created_skipped_even_with_dependencies() -> None:
    spec = TaskSpec("lint", skip_reason="skip: true", depends_on=("build",), manual=True)
    assert initial_status(spec) is S.SKIPPED


def test_a_manual_task_is_created_waiting_even_without_dependencies() -> None:
    assert initial_status(TaskSpec("deploy", manual=True)) is S.CREATED


def test_tasks_without_conditions_are_created_as_before() -> None:
    assert initial_status(TaskSpec("a")) is S.SCHEDULED
    assert initial_status(TaskSpec("b", depends_on=("a",))) is S.CREATED
    assert initial_status(TaskSpec("c", allow_failures=True)) is S.SCHEDULED


# --- what a status counts as ----------------------------------------------------------------


def test_a_task_skipped_by_its_condition_counts_as_completed() -> None:
    assert counted_status(S.SKIPPED, TaskSpec("a", skip_reason="skip: true")) is S.COMPLETED


def test_a_task_skipped_because_a_dependency_failed_counts_as_skipped() -> None:
    assert counted_status(S.SKIPPED, TaskSpec("a")) is S.SKIPPED
    assert counted_status(S.SKIPPED, TaskSpec("a", allow_failures=True)) is S.SKIPPED


def test_only_a_failure_of_an_allow_failures_task_counts_as_completed() -> None:
    tolerant = TaskSpec("nightly", allow_failures=True)
    assert counted_status(S.FAILED, tolerant) is S.COMPLETED
    assert counted_status(S.ABORTED, tolerant) is S.ABORTED
    assert counted_status(S.EXECUTING, tolerant) is S.EXECUTING
    assert counted_status(S.FAILED, TaskSpec("strict")) is S.FAILED


# --- dependants -----------------------------------------------------------------------------


def test_a_held_task_is_never_scheduled_but_is_skipped_after_a_failed_dependency() -> None:
    assert advance_dependencies({"m": S.CREATED}, {}, held={"m"}) == {}
    statuses = {"a": S.COMPLETED, "m": S.CREATED}
    assert advance_dependencies(statuses, {"m": ("a",)}, held={"m"}) == {}
    statuses = {"a": S.FAILED, "m": S.CREATED, "after": S.CREATED}
    deps = {"m": ("a",), "after": ("m",)}
    assert advance_dependencies(statuses, deps, held={"m"}) == {"m": S.SKIPPED, "after": S.SKIPPED}


def test_dependants_of_a_held_task_wait_for_it() -> None:
    statuses = {"m": S.CREATED, "after": S.CREATED}
    assert advance_dependencies(statuses, {"after": ("m",)}, held={"m"}) == {}


# --- the build's status ---------------------------------------------------------------------


def test_a_failed_allow_failures_task_does_not_fail_the_build() -> None:
    tolerant = TaskSpec("2", allow_failures=True)
    assert build_of(record("1", S.COMPLETED), record("2", S.FAILED, tolerant)).status is (
        S.COMPLETED
    )
    assert build_of(record("1", S.FAILED), record("2", S.FAILED, tolerant)).status is S.FAILED


def test_a_build_whose_skipped_task_was_skipped_by_its_condition_completes() -> None:
    skipped = record("2", S.SKIPPED, TaskSpec("2", skip_reason="skip: true"))
    assert build_of(record("1", S.COMPLETED), skipped).status is S.COMPLETED
    assert build_of(record("1", S.COMPLETED), record("3", S.SKIPPED)).status is S.FAILED


def test_an_untriggered_manual_task_does_not_hold_its_build_open() -> None:
    manual = TaskSpec("2", manual=True)
    waiting = record("2", S.CREATED, manual, awaiting=True)
    assert build_of(record("1", S.COMPLETED), waiting).status is S.COMPLETED
    assert build_of(record("1", S.FAILED), waiting).status is S.FAILED
    assert build_of(record("1", S.EXECUTING), waiting).status is S.EXECUTING


def test_a_triggered_manual_task_counts_again_until_it_is_final() -> None:
    manual = TaskSpec("2", manual=True)
    assert build_of(record("1", S.COMPLETED), record("2", S.SCHEDULED, manual)).status is (
        S.EXECUTING
    )
    assert build_of(record("1", S.COMPLETED), record("2", S.FAILED, manual)).status is S.FAILED


def test_a_manual_task_skipped_after_a_failed_dependency_is_final_like_any_other() -> None:
    skipped = record("2", S.SKIPPED, TaskSpec("2", manual=True), awaiting=True)
    assert not skipped.waiting_for_trigger
    assert build_of(record("1", S.ABORTED), skipped).status is S.ABORTED


# --- alias ----------------------------------------------------------------------------------


SHARDS = (
    TaskSpec("Test Shard 1/2", alias="Tests"),
    TaskSpec("Test Shard 2/2", alias="Tests"),
    TaskSpec("lint"),
    TaskSpec("deploy", depends_on=("Tests", "lint")),
)


def test_depending_on_an_alias_waits_for_every_task_that_has_it() -> None:
    build = validate_build(BuildSpec(SHARDS))
    assert build.dependency_indices() == ((), (), (), (0, 1, 2))


def test_a_task_answers_to_its_name_as_well_as_its_alias() -> None:
    build = BuildSpec((TaskSpec("unit", alias="tests"), TaskSpec("after", depends_on=("unit",))))
    assert validate_build(build).dependency_indices() == ((), (0,))


def test_an_unknown_dependency_is_still_refused_when_aliases_exist() -> None:
    with pytest.raises(BuildConfigError) as error:
        validate_build(BuildSpec((*SHARDS, TaskSpec("x", depends_on=("Test",)))))
    assert str(error.value) == 'task "x": "depends_on" names unknown task "Test"'


def test_a_cycle_through_an_alias_is_refused_with_the_task_names() -> None:
    build = BuildSpec(
        (TaskSpec("a", alias="first", depends_on=("b",)), TaskSpec("b", depends_on=("first",)))
    )
    with pytest.raises(BuildConfigError) as error:
        validate_build(build)
    assert str(error.value) == 'task "a": "depends_on" forms a cycle: a -> b -> a'


def test_a_task_depending_on_its_own_alias_is_a_cycle() -> None:
    with pytest.raises(BuildConfigError, match="a -> a"):
        validate_build(BuildSpec((TaskSpec("a", alias="me", depends_on=("me",)),)))
