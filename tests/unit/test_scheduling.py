"""Scheduling: labels, pausing, hosted-Cirrus concurrency, FIFO, pending reasons, build progress."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from adapters.cirrus_config.parse_build import parse_build
from domain.build import TaskStatus
from domain.resources import fits, free_resources
from domain.scheduling import (
    QueuedTask,
    WorkerView,
    advance_dependencies,
    assign,
    build_status,
    labels_match,
    pending_reason,
)

S = TaskStatus


def queued(task_id: str, sequence: int = 0, **resources: float) -> QueuedTask:
    requested = {key.replace("_", "-"): amount for key, amount in resources.items()}
    return QueuedTask(task_id, resources=requested, sequence=sequence)


def worker(
    name: str = "w",
    *,
    labels: Mapping[str, str] | None = None,
    total: Mapping[str, float] | None = None,
    in_use: Mapping[str, float] | None = None,
    running: tuple[str, ...] = (),
    paused: bool = False,
    online: bool = True,
) -> WorkerView:
    return WorkerView(name, labels or {}, total or {}, in_use or {}, running, paused, online)


# --- labels and state ----------------------------------------------------------------------


def test_a_worker_needs_every_label_of_the_task() -> None:
    task = QueuedTask("t", labels={"os": "darwin", "tart": "yes"})
    assert assign([task], [worker(labels={"os": "darwin"})], "w") == []
    assert assign([task], [worker(labels={"os": "darwin", "tart": "no"})], "w") == []
    assert assign([task], [worker(labels={"os": "darwin", "tart": "yes", "x": "1"})], "w") == ["t"]


def test_labels_match_compares_values_not_just_keys() -> None:
    assert labels_match({"a": "1", "b": "2"}, {"a": "1"})
    assert not labels_match({"a": "1"}, {"a": "2"})
    assert labels_match({}, {})


def test_a_paused_worker_gets_nothing() -> None:
    assert assign([queued("t")], [worker(paused=True)], "w") == []


def test_an_offline_worker_gets_nothing() -> None:
    assert assign([queued("t")], [worker(online=False)], "w") == []


def test_an_unknown_polling_worker_gets_nothing() -> None:
    assert assign([queued("t")], [worker("other")], "w") == []


def test_only_the_polling_worker_is_served() -> None:
    workers = [worker("a"), worker("b")]
    assert assign([queued("t1", 1), queued("t2", 2)], workers, "b") == ["t1"]


# --- concurrency ---------------------------------------------------------------------------


def test_a_worker_without_resources_runs_one_task_at_a_time() -> None:
    tasks = [queued("t1", 1), queued("t2", 2)]
    assert assign(tasks, [worker()], "w") == ["t1"]
    assert assign(tasks[1:], [worker(running=("t1",))], "w") == []


def test_a_task_with_resources_never_fits_a_worker_without_them() -> None:
    assert assign([queued("t", tart_vms=1)], [worker()], "w") == []


def test_a_resource_aware_worker_runs_resourceful_tasks_while_they_fit() -> None:
    tasks = [queued(f"t{i}", i, tart_vms=1) for i in range(3)]
    assert assign(tasks, [worker(total={"tart-vms": 2})], "w") == ["t0", "t1"]


def test_a_resource_aware_worker_counts_resources_already_in_use() -> None:
    tasks = [queued("t1", 1, tart_vms=1), queued("t2", 2, tart_vms=1)]
    busy = worker(total={"tart-vms": 2}, in_use={"tart-vms": 1}, running=("t0",))
    assert assign(tasks, [busy], "w") == ["t1"]


def test_a_resource_less_task_runs_alone_on_a_resource_aware_worker() -> None:
    tasks = [queued("plain", 1), queued("vm", 2, tart_vms=1)]
    assert assign(tasks, [worker(total={"tart-vms": 2})], "w") == ["plain"]


def test_nothing_joins_a_running_resource_less_task() -> None:
    busy = worker(total={"tart-vms": 2}, running=("plain",))
    assert assign([queued("vm", 1, tart_vms=1), queued("p", 2)], [busy], "w") == []


def test_a_resource_less_task_waits_while_resourceful_tasks_run() -> None:
    busy = worker(total={"tart-vms": 2}, in_use={"tart-vms": 1}, running=("vm",))
    assert assign([queued("plain", 1)], [busy], "w") == []


def test_a_zero_request_counts_as_resource_less() -> None:
    tasks = [queued("zero", 1, tart_vms=0), queued("vm", 2, tart_vms=1)]
    assert assign(tasks, [worker(total={"tart-vms": 2})], "w") == ["zero"]


def test_a_task_needs_every_requested_key_free() -> None:
    tasks = [QueuedTask("t", resources={"tart-vms": 1, "gpu": 1})]
    assert assign(tasks, [worker(total={"tart-vms": 2})], "w") == []
    assert assign(tasks, [worker(total={"tart-vms": 2, "gpu": 1})], "w") == ["t"]


def test_fractional_resources_add_up_exactly_to_the_total() -> None:
    tasks = [queued(f"t{i}", i, gpu=0.5) for i in range(3)]
    assert assign(tasks, [worker(total={"gpu": 1})], "w") == ["t0", "t1"]


def test_free_resources_go_negative_for_keys_only_in_use() -> None:
    assert free_resources({"a": 2}, {"a": 1, "b": 1}) == {"a": 1, "b": -1}
    assert fits({"a": 1}, {"a": 1})
    assert not fits({"a": 1}, {"c": 1})  # free a=1; c=1 requested
    assert fits({}, {})


# --- order ---------------------------------------------------------------------------------


def test_tasks_are_handed_out_in_submission_order() -> None:
    tasks = [queued("late", 5, tart_vms=1), queued("early", 1, tart_vms=1)]
    assert assign(tasks, [worker(total={"tart-vms": 1})], "w") == ["early"]


def test_a_task_that_does_not_fit_does_not_block_later_ones_that_do() -> None:
    tasks = [queued("big", 1, tart_vms=2), queued("small", 2, tart_vms=1)]
    busy = worker(total={"tart-vms": 2}, in_use={"tart-vms": 1}, running=("x",))
    assert assign(tasks, [busy], "w") == ["small"]


def test_a_task_for_other_labels_does_not_block_later_ones() -> None:
    tasks = [QueuedTask("mac", labels={"os": "darwin"}, sequence=1), queued("any", 2)]
    assert assign(tasks, [worker(labels={"os": "linux"})], "w") == ["any"]


EXAMPLE_BUILD = """
persistent_worker:
  isolation:
    tart:
      image: ghcr.io/cirruslabs/macos-monterey-base:latest
      user: admin
      password: admin
  resources:
    tart-vms: 1

task:
  name: Test
  script: make test

task:
  name: Build
  script: make build

task:
  name: Release
  script: make release
"""


def test_the_example_build_never_runs_more_than_two_tasks_on_a_worker_with_two_vms() -> None:
    build = parse_build(EXAMPLE_BUILD)
    queue = [
        QueuedTask(task.name, task.labels, task.resources, sequence)
        for sequence, task in enumerate(build.tasks)
    ]
    running: dict[str, float] = {}
    peak = 0
    finished: list[str] = []
    while queue or running:
        view = worker(
            total={"tart-vms": 2},
            in_use={"tart-vms": sum(running.values())},
            running=tuple(running),
        )
        handed_out = assign(queue, [view], "w")
        for task_id in handed_out:
            running[task_id] = build.task(task_id).resources["tart-vms"]
        queue = [task for task in queue if task.id not in handed_out]
        peak = max(peak, len(running))
        assert len(running) <= 2
        oldest = next(iter(running))
        finished.append(oldest)
        del running[oldest]
    assert peak == 2
    assert finished == ["Test", "Build", "Release"]


# --- properties ----------------------------------------------------------------------------

KEYS = st.sampled_from(["tart-vms", "gpu", "cpu"])
LABELS = st.dictionaries(st.sampled_from(["os", "arch", "tart"]), st.sampled_from(["a", "b"]))
AMOUNTS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])


@st.composite
def scheduling_cases(draw: st.DrawFn) -> tuple[list[QueuedTask], WorkerView]:
    total = draw(st.dictionaries(KEYS, AMOUNTS, max_size=3))
    in_use = {k: draw(st.sampled_from([0.0, v / 2, v])) for k, v in total.items()}
    running = ("r",) if draw(st.booleans()) or any(in_use.values()) else ()
    view = WorkerView(
        "w", draw(LABELS), total, in_use, running, paused=draw(st.booleans()), online=True
    )
    tasks = [
        QueuedTask(f"t{i}", draw(LABELS), draw(st.dictionaries(KEYS, AMOUNTS, max_size=3)), i)
        for i in range(draw(st.integers(0, 8)))
    ]
    return tasks, view


@given(scheduling_cases())
def test_assign_never_over_commits_resources(case: tuple[list[QueuedTask], WorkerView]) -> None:
    tasks, view = case
    chosen = [t for t in tasks if t.id in set(assign(tasks, [view], "w"))]
    for key, total in view.resources_total.items():
        used = view.resources_in_use.get(key, 0.0) + sum(t.resources.get(key, 0.0) for t in chosen)
        assert used <= total
    for task in chosen:
        for key, amount in task.resources.items():
            if amount > 0:
                assert key in view.resources_total


@given(scheduling_cases())
def test_assign_never_hands_out_a_task_whose_labels_the_worker_lacks(
    case: tuple[list[QueuedTask], WorkerView],
) -> None:
    tasks, view = case
    by_id = {t.id: t for t in tasks}
    for task_id in assign(tasks, [view], "w"):
        assert labels_match(view.labels, by_id[task_id].labels)


@given(scheduling_cases())
def test_a_resource_less_task_is_only_ever_handed_out_alone(
    case: tuple[list[QueuedTask], WorkerView],
) -> None:
    tasks, view = case
    by_id = {t.id: t for t in tasks}
    chosen = assign(tasks, [view], "w")
    if any(not any(v > 0 for v in by_id[i].resources.values()) for i in chosen):
        assert len(chosen) == 1
        assert view.running_task_ids == ()
    if view.paused:
        assert chosen == []


# --- pending reasons -----------------------------------------------------------------------


def test_pending_without_any_worker() -> None:
    assert pending_reason(queued("t"), []) == "no worker is registered"


def test_pending_without_a_worker_with_the_labels() -> None:
    task = QueuedTask("t", labels={"tart": "yes", "os": "darwin"})
    reason = pending_reason(task, [worker(labels={"os": "darwin"})])
    assert reason == "no worker with labels os=darwin, tart=yes"


def test_pending_when_every_matching_worker_is_paused() -> None:
    reason = pending_reason(queued("t"), [worker("a", paused=True), worker("b", paused=True)])
    assert reason == "all matching workers are paused"


def test_pending_when_every_matching_worker_is_offline() -> None:
    reason = pending_reason(queued("t"), [worker(online=False)])
    assert reason == "all matching workers are offline"


def test_pending_when_matching_workers_are_paused_or_offline() -> None:
    reason = pending_reason(queued("t"), [worker("a", paused=True), worker("b", online=False)])
    assert reason == "all matching workers are paused or offline"


def test_pending_when_no_worker_has_enough_resources_at_all() -> None:
    reason = pending_reason(queued("t", tart_vms=3), [worker(total={"tart-vms": 2})])
    assert reason == "no matching worker has tart-vms=3 in total"


def test_pending_when_the_resources_are_in_use() -> None:
    busy = worker(total={"tart-vms": 2}, in_use={"tart-vms": 2}, running=("a", "b"))
    reason = pending_reason(queued("t", tart_vms=1), [busy])
    assert reason == "not enough free tart-vms on any worker"


def test_pending_when_a_resource_less_task_occupies_the_worker() -> None:
    busy = worker(total={"tart-vms": 2}, running=("plain",))
    assert pending_reason(queued("t", tart_vms=1), [busy]) == "all matching workers are busy"


def test_pending_resource_less_task_on_busy_workers() -> None:
    busy = worker(running=("x",))
    assert pending_reason(queued("t"), [busy]) == "all matching workers are busy"


def test_pending_when_a_worker_could_take_it_at_its_next_poll() -> None:
    assert pending_reason(queued("t"), [worker()]) == "waiting for a matching worker to poll"
    idle = worker(total={"tart-vms": 1})
    assert (
        pending_reason(queued("t", tart_vms=1), [idle]) == "waiting for a matching worker to poll"
    )


# --- dependencies and build status ---------------------------------------------------------


def test_a_task_without_dependencies_is_scheduled_at_once() -> None:
    assert advance_dependencies({"a": S.CREATED}, {}) == {"a": S.SCHEDULED}


def test_a_task_waits_until_every_dependency_completed() -> None:
    deps = {"c": ("a", "b")}
    assert advance_dependencies({"a": S.COMPLETED, "b": S.EXECUTING, "c": S.CREATED}, deps) == {}
    assert advance_dependencies({"a": S.COMPLETED, "b": S.COMPLETED, "c": S.CREATED}, deps) == {
        "c": S.SCHEDULED
    }


def test_a_failed_aborted_or_skipped_dependency_skips_the_task() -> None:
    for outcome in (S.FAILED, S.ABORTED, S.SKIPPED):
        statuses = {"a": outcome, "b": S.EXECUTING, "c": S.CREATED}
        assert advance_dependencies(statuses, {"c": ("a", "b")}) == {"c": S.SKIPPED}


def test_skips_cascade_in_one_call() -> None:
    statuses = {"a": S.FAILED, "b": S.CREATED, "c": S.CREATED}
    assert advance_dependencies(statuses, {"b": ("a",), "c": ("b",)}) == {
        "b": S.SKIPPED,
        "c": S.SKIPPED,
    }


def test_tasks_already_past_created_are_left_alone() -> None:
    statuses = {"a": S.SCHEDULED, "b": S.EXECUTING, "c": S.FAILED}
    assert advance_dependencies(statuses, {}) == {}


def test_a_dependency_missing_from_the_statuses_keeps_the_task_waiting() -> None:
    assert advance_dependencies({"b": S.CREATED}, {"b": ("a",)}) == {}


def test_a_build_executes_until_every_task_is_final() -> None:
    assert build_status([S.COMPLETED, S.CREATED]) is S.EXECUTING
    assert build_status([S.COMPLETED, S.SCHEDULED]) is S.EXECUTING
    assert build_status([S.FAILED, S.EXECUTING]) is S.EXECUTING


def test_a_build_completes_when_every_task_completed() -> None:
    assert build_status([S.COMPLETED, S.COMPLETED]) is S.COMPLETED
    assert build_status([]) is S.COMPLETED


def test_a_build_fails_when_a_task_failed_even_if_another_was_aborted() -> None:
    assert build_status([S.COMPLETED, S.FAILED, S.SKIPPED]) is S.FAILED
    assert build_status([S.ABORTED, S.FAILED]) is S.FAILED


def test_a_build_is_aborted_when_a_task_was_aborted_and_none_failed() -> None:
    assert build_status([S.COMPLETED, S.ABORTED, S.SKIPPED]) is S.ABORTED


def test_a_build_with_only_skipped_tasks_besides_completed_ones_failed() -> None:
    assert build_status([S.COMPLETED, S.SKIPPED]) is S.FAILED
