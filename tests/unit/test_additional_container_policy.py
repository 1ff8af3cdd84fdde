"""A worker's security policy judges additional containers like the task's own image."""

from __future__ import annotations

import pytest

from domain.errors import PolicyViolation
from domain.isolation import AdditionalContainer, ContainerIsolation
from domain.policy import AllowedIsolations, ContainerPolicy, SecurityPolicy, check_isolation
from domain.scheduling import QueuedTask, WorkerView, assign, pending_reason

LIBRARY_IMAGES = SecurityPolicy(
    AllowedIsolations(container=ContainerPolicy(allowed_images=("docker.io/library/*",)))
)


def with_service(image: str, *, privileged: bool = False) -> ContainerIsolation:
    service = AdditionalContainer(name="db", image=image, privileged=privileged)
    return ContainerIsolation(image="docker.io/library/alpine", additional_containers=(service,))


def test_a_service_image_matching_the_patterns_is_accepted() -> None:
    check_isolation(LIBRARY_IMAGES, with_service("docker.io/library/postgres"))


def test_a_service_image_outside_the_patterns_refuses_the_task_naming_the_service() -> None:
    with pytest.raises(PolicyViolation) as refused:
        check_isolation(LIBRARY_IMAGES, with_service("evil.example/miner"))
    assert str(refused.value) == (
        'invalid isolation parameters: additional container "db" image "evil.example/miner" '
        "is not allowed by this Persistent Worker's security settings"
    )


def test_a_privileged_service_is_refused_even_without_image_patterns() -> None:
    with pytest.raises(PolicyViolation, match='privileged additional container "db"'):
        check_isolation(SecurityPolicy(), with_service("postgres", privileged=True))


def test_the_scheduler_keeps_such_a_task_waiting_and_names_the_services() -> None:
    task = QueuedTask(id="1", isolation=with_service("evil.example/miner"), sequence=1)
    workers = [WorkerView("w1", policy=LIBRARY_IMAGES)]
    assert assign([task], workers, "w1") == []
    assert pending_reason(task, workers) == (
        "no worker's security policy allows the additional containers of this container "
        "isolation (image or privileged)"
    )
