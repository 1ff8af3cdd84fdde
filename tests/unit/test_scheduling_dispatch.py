"""``domain.scheduling.choose_workers``: which held poll a newly queued task wakes."""

from __future__ import annotations

from domain.isolation import ContainerIsolation
from domain.policy import AllowedIsolations, NonePolicy, SecurityPolicy
from domain.scheduling import QueuedTask, WorkerView, assign, can_take, choose_workers, with_task


def test_a_task_goes_to_the_first_worker_with_its_labels_and_no_other() -> None:
    workers = [
        WorkerView("idle-1", labels={"pool": "idle"}),
        WorkerView("real", labels={"pool": "real"}),
        WorkerView("real-2", labels={"pool": "real"}),
    ]
    task = QueuedTask("t1", labels={"pool": "real"})
    assert choose_workers([task], workers) == {"t1": "real"}


def test_tasks_are_spread_in_fifo_order_over_workers_that_run_one_task_each() -> None:
    workers = [WorkerView("a"), WorkerView("b")]
    tasks = [QueuedTask("late", sequence=2), QueuedTask("early", sequence=1)]
    assert choose_workers(tasks, workers) == {"early": "a", "late": "b"}


def test_a_worker_with_room_for_several_tasks_gets_them_all() -> None:
    workers = [WorkerView("big", resources_total={"slots": 2}), WorkerView("other")]
    tasks = [QueuedTask(f"t{i}", resources={"slots": 1}, sequence=i) for i in range(3)]
    assert choose_workers(tasks, workers) == {"t0": "big", "t1": "big"}


def test_paused_busy_and_policy_refusing_workers_are_not_chosen() -> None:
    refusing = SecurityPolicy(allowed_isolations=AllowedIsolations(none=NonePolicy()))
    workers = [
        WorkerView("paused", paused=True),
        WorkerView("busy", running_task_ids=("x",)),
        WorkerView("refusing", policy=refusing),
    ]
    task = QueuedTask("t", isolation=ContainerIsolation(image="debian:12"))
    assert choose_workers([task], workers) == {}


def test_can_take_agrees_with_assign_for_one_task() -> None:
    worker = WorkerView("w", resources_total={"slots": 1}, resources_in_use={"slots": 1})
    task = QueuedTask("t", resources={"slots": 1})
    assert can_take(worker, task) is bool(assign([task], [worker], "w"))
    freed = WorkerView("w", resources_total={"slots": 2})
    assert can_take(freed, task) is bool(assign([task], [freed], "w")) is True
    assert with_task(freed, task).resources_in_use == {"slots": 1.0}
