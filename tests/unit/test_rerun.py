"""The re-run rules: attempts of a task, which new attempts a re-run creates, build re-runs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain.build import TaskSpec, TaskStatus
from domain.rerun import (
    RerunError,
    attempts_of,
    build_rerun_choice,
    plan_rerun,
    split_attempts,
)

COMPLETED, FAILED, ABORTED = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED
SKIPPED, EXECUTING, CREATED = TaskStatus.SKIPPED, TaskStatus.EXECUTING, TaskStatus.CREATED


@dataclass(frozen=True)
class Task:
    """A hand-written stand-in for a stored task (``domain.rerun.Attempt``)."""

    id: str
    status: TaskStatus
    spec: TaskSpec
    attempt: int = 1
    rerun_of: str | None = None


def task(task_id: str, name: str, status: TaskStatus, *depends_on: str, **more: object) -> Task:
    spec = TaskSpec(name=name, depends_on=depends_on, **more)  # type: ignore[arg-type]
    return Task(task_id, status, spec)


def again(previous: Task, task_id: str, status: TaskStatus) -> Task:
    return Task(task_id, status, previous.spec, previous.attempt + 1, previous.id)


def test_a_build_without_reruns_has_only_latest_attempts() -> None:
    tasks = [task("1", "a", COMPLETED), task("2", "b", FAILED)]
    assert split_attempts(tasks) == (tasks, [])


def test_the_latest_attempt_takes_the_place_of_the_first_in_configuration_order() -> None:
    a, b = task("1", "a", FAILED), task("2", "b", COMPLETED)
    a2 = again(a, "3", FAILED)
    a3 = again(a2, "4", COMPLETED)
    latest, earlier = split_attempts([a, b, a2, a3])
    assert [t.id for t in latest] == ["4", "2"]
    assert [t.id for t in earlier] == ["1", "3"]


def test_attempts_of_any_attempt_lists_the_whole_chain_first_to_latest() -> None:
    a, b = task("1", "a", FAILED), task("2", "b", COMPLETED)
    a2 = again(a, "3", FAILED)
    a3 = again(a2, "4", COMPLETED)
    for member in ("1", "3", "4"):
        assert [t.id for t in attempts_of([a, b, a2, a3], member)] == ["1", "3", "4"]
    assert [t.id for t in attempts_of([a, b, a2, a3], "2")] == ["2"]
    assert attempts_of([a], "9") == []


def test_rerunning_a_failed_task_creates_its_next_attempt_queued() -> None:
    tasks = [task("1", "a", FAILED), task("2", "b", COMPLETED)]
    [plan] = plan_rerun(tasks, ["1"])
    assert (plan.rerun_of, plan.attempt, plan.spec.name) == ("1", 2, "a")
    assert plan.status is TaskStatus.SCHEDULED


def test_final_dependants_run_again_directly_or_not_and_wait_for_their_dependency() -> None:
    tasks = [
        task("1", "build", COMPLETED),
        task("2", "test", FAILED, "build"),
        task("3", "deploy", SKIPPED, "test"),
        task("4", "lint", COMPLETED),
    ]
    plans = plan_rerun(tasks, ["1"])
    assert [p.rerun_of for p in plans] == ["1", "2", "3"]
    assert [p.status for p in plans] == [TaskStatus.SCHEDULED, CREATED, CREATED]


def test_a_dependant_that_is_not_final_is_left_to_wait_for_the_new_attempt() -> None:
    tasks = [task("1", "a", COMPLETED), task("2", "b", CREATED, "a", manual=True)]
    assert [p.rerun_of for p in plan_rerun(tasks, ["1"])] == ["1"]


def test_a_task_that_is_not_final_cannot_be_rerun() -> None:
    with pytest.raises(RerunError, match="task 1 is EXECUTING: only a final task"):
        plan_rerun([task("1", "a", EXECUTING)], ["1"])


def test_an_earlier_attempt_cannot_be_rerun_and_the_error_names_the_latest() -> None:
    a = task("1", "a", FAILED)
    with pytest.raises(RerunError, match="re-run its latest attempt 2"):
        plan_rerun([a, again(a, "2", FAILED)], ["1"])


def test_a_task_of_another_build_cannot_be_rerun() -> None:
    with pytest.raises(RerunError, match="not a task of this build"):
        plan_rerun([task("1", "a", FAILED)], ["7"])


def test_a_manual_task_rerun_on_purpose_needs_no_trigger_but_a_manual_dependant_does() -> None:
    tasks = [task("1", "a", COMPLETED, manual=True), task("2", "b", COMPLETED, "a", manual=True)]
    first, second = plan_rerun(tasks, ["1"])
    assert (first.status, first.awaiting_trigger) == (TaskStatus.SCHEDULED, False)
    assert (second.status, second.awaiting_trigger) == (CREATED, True)


def test_a_task_skipped_by_its_condition_is_skipped_again() -> None:
    [plan] = plan_rerun([task("1", "a", SKIPPED, skip_reason="docs only")], ["1"])
    assert plan.status is TaskStatus.SKIPPED


def test_dependencies_on_an_alias_make_its_tasks_dependants() -> None:
    tasks = [task("1", "a", FAILED, alias="tests"), task("2", "b", SKIPPED, "tests")]
    assert [p.rerun_of for p in plan_rerun(tasks, ["1"])] == ["1", "2"]


def test_a_build_rerun_of_failed_tasks_picks_failed_and_aborted_latest_attempts() -> None:
    a = task("1", "a", FAILED)
    tasks = [a, task("2", "b", ABORTED), task("3", "c", COMPLETED), again(a, "4", COMPLETED)]
    assert build_rerun_choice(tasks, failed_only=True) == ["2"]
    assert build_rerun_choice(tasks, failed_only=False) == ["4", "2", "3"]


def test_a_build_rerun_with_nothing_to_rerun_is_refused() -> None:
    with pytest.raises(RerunError, match="no failed or aborted task"):
        build_rerun_choice([task("1", "a", COMPLETED)], failed_only=True)
    with pytest.raises(RerunError, match="no final task"):
        build_rerun_choice([task("1", "a", EXECUTING)], failed_only=False)
