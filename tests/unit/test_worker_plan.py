"""The worker's pure plan of a poll answer (``domain.worker_plan``): no I/O, no event loop."""

from __future__ import annotations

from domain.protocol import AgentAwareTask, PollResponse, StandbyParameters
from domain.worker_plan import (
    IgnoreTask,
    RefuseTask,
    ShutDown,
    StartTask,
    StopTask,
    UpdateStandby,
    WorkerMode,
    accepts_standby,
    drain,
    finished,
    plan,
)

NOTHING_RUNS: frozenset[str] = frozenset()


def _task(task_id: str) -> AgentAwareTask:
    return AgentAwareTask(task_id=task_id, client_secret="c", server_secret="s")


def test_stops_come_before_starts_in_the_order_the_controller_gave() -> None:
    answer = PollResponse(tasks_to_start=(_task("3"),), tasks_to_stop=("1", "2"))
    mode, actions = plan(WorkerMode(), answer, frozenset({"1"}))
    assert actions == (StopTask("1"), StopTask("2"), StartTask(_task("3")))
    assert mode == WorkerMode()


def test_a_task_already_running_or_offered_twice_is_ignored_not_started_again() -> None:
    answer = PollResponse(tasks_to_start=(_task("1"), _task("2"), _task("2")))
    _, actions = plan(WorkerMode(), answer, frozenset({"1"}))
    assert actions == (IgnoreTask("1"), StartTask(_task("2")), IgnoreTask("2"))


def test_a_draining_worker_refuses_every_offered_task() -> None:
    answer = PollResponse(tasks_to_start=(_task("1"), _task("2")))
    mode, actions = plan(drain(WorkerMode()), answer, NOTHING_RUNS)
    assert actions == (RefuseTask(_task("1")), RefuseTask(_task("2")))
    assert (mode.refusing, mode.paused, mode.finish_when_idle) == (True, True, True)


def test_an_ephemeral_worker_runs_its_first_task_and_refuses_the_rest() -> None:
    answer = PollResponse(tasks_to_start=(_task("1"), _task("2")))
    mode, actions = plan(WorkerMode(ephemeral=True), answer, NOTHING_RUNS)
    assert actions == (StartTask(_task("1")), RefuseTask(_task("2")))
    assert (mode.refusing, mode.finish_when_idle) == (True, True)
    _, later = plan(mode, PollResponse(tasks_to_start=(_task("3"),)), frozenset({"1"}))
    assert later == (RefuseTask(_task("3")),)


def test_shutdown_stops_polling_after_the_tasks_of_the_same_answer_are_handled() -> None:
    answer = PollResponse(tasks_to_start=(_task("1"),), shutdown=True)
    mode, actions = plan(WorkerMode(), answer, NOTHING_RUNS)
    assert actions == (StartTask(_task("1")), ShutDown())
    assert (mode.polling, mode.refusing, mode.finish_when_idle) == (False, True, True)


def test_standby_parameters_are_taken_unless_the_answer_shuts_the_worker_down() -> None:
    pushed = StandbyParameters()
    _, actions = plan(WorkerMode(), PollResponse(updated_standby_instances=(pushed,)), NOTHING_RUNS)
    assert actions == (UpdateStandby(pushed),)
    both = PollResponse(updated_standby_instances=(pushed,), shutdown=True)
    _, actions = plan(WorkerMode(), both, NOTHING_RUNS)
    assert actions == (ShutDown(),)


def test_a_worker_finishes_only_when_told_to_and_idle() -> None:
    assert not finished(WorkerMode(), 0)
    assert not finished(drain(WorkerMode()), 1)
    assert finished(drain(WorkerMode()), 0)


def test_no_standby_is_warmed_while_tasks_are_refused() -> None:
    assert accepts_standby(WorkerMode())
    assert not accepts_standby(drain(WorkerMode()))


def test_draining_twice_is_the_same_as_once() -> None:
    once = drain(WorkerMode())
    assert drain(once) == once
