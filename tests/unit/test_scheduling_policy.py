"""The scheduler offers a task only to workers whose security policy lets them run it."""

from __future__ import annotations

from domain.build import TaskSpec, TaskStatus
from domain.isolation import ContainerIsolation, ContainerVolume, Isolation, NoneIsolation
from domain.policy import AllowedIsolations, ContainerPolicy, NonePolicy, SecurityPolicy
from domain.scheduling import QueuedTask, WorkerView, assign, pending_reason
from domain.store import TaskRecord

HOST_ONLY = SecurityPolicy(AllowedIsolations(none=NonePolicy()))
LIBRARY_IMAGES = SecurityPolicy(
    AllowedIsolations(container=ContainerPolicy(allowed_images=("docker.io/library/*",)))
)
NO_VOLUMES = SecurityPolicy(AllowedIsolations(container=ContainerPolicy(allowed_volumes=())))

ALPINE = ContainerIsolation(image="docker.io/library/alpine", cpu=2.0, memory=4096)
ROGUE = ContainerIsolation(image="evil.example/miner", cpu=2.0, memory=4096)


def task(isolation: Isolation, **labels: str) -> QueuedTask:
    return QueuedTask(id="1", labels=labels, isolation=isolation, sequence=1)


def test_a_worker_whose_policy_refuses_the_isolation_is_not_offered_the_task() -> None:
    workers = [WorkerView("w1", policy=HOST_ONLY)]
    assert assign([task(ALPINE)], workers, "w1") == []
    assert assign([task(NoneIsolation())], workers, "w1") == ["1"]


def test_a_worker_whose_image_patterns_refuse_the_image_is_skipped_for_later_tasks() -> None:
    rogue = QueuedTask(id="1", isolation=ROGUE, sequence=1)
    fine = QueuedTask(id="2", isolation=ALPINE, sequence=2)
    assert assign([rogue, fine], [WorkerView("w1", policy=LIBRARY_IMAGES)], "w1") == ["2"]


def test_a_worker_that_reported_no_policy_takes_any_isolation() -> None:
    assert assign([task(ROGUE)], [WorkerView("w1")], "w1") == ["1"]


def test_a_task_no_policy_allows_waits_with_the_isolation_it_lacks() -> None:
    reason = pending_reason(task(ALPINE), [WorkerView("w1", policy=HOST_ONLY)])
    assert reason == "no worker's security policy allows container isolation"


def test_a_task_whose_image_no_policy_allows_waits_naming_the_image() -> None:
    workers = [WorkerView("w1", {"os": "linux"}, policy=LIBRARY_IMAGES)]
    reason = pending_reason(task(ROGUE, os="linux"), workers)
    assert reason == (
        "no worker's security policy allows container image 'evil.example/miner' "
        "(of the workers with labels os=linux)"
    )


def test_a_task_whose_volumes_no_policy_allows_waits_naming_the_volumes() -> None:
    with_volume = ContainerIsolation(image="alpine", volumes=(ContainerVolume("/etc", "/etc"),))
    reason = pending_reason(task(with_volume), [WorkerView("w1", policy=NO_VOLUMES)])
    assert reason == "no worker's security policy allows the volumes of this container isolation"


def test_one_accepting_worker_is_enough_and_the_usual_reasons_follow() -> None:
    workers = [WorkerView("w1", policy=HOST_ONLY), WorkerView("w2", paused=True)]
    assert pending_reason(task(ALPINE), workers) == "all matching workers are paused"


def test_a_stored_task_is_queued_with_its_isolation() -> None:
    record = TaskRecord(
        id="7",
        build_id="1",
        name="t",
        status=TaskStatus.SCHEDULED,
        spec=TaskSpec(name="t", isolation=ALPINE),
        sequence=3,
        created_at=0.0,
        updated_at=0.0,
    )
    assert record.as_queued().isolation == ALPINE
    assert assign([record.as_queued()], [WorkerView("w1", policy=HOST_ONLY)], "w1") == []
