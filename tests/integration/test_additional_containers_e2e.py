"""End to end: ``additional_containers:`` of a ``.cirrus.yml`` through a real controller and a
real worker with podman. The service runs next to the task's container, the task reaches it on
``localhost``, and nothing of either is left once the task is over. A service image that the
worker's policy refuses keeps the task ``SCHEDULED`` with the reason.
"""

from __future__ import annotations

import uuid

import pytest

from tests.integration import test_cirrus_config_e2e as e2e
from tests.integration.container_image import TEST_IMAGE, containers_labelled
from tests.integration.test_cirrus_config_e2e import (
    BUILD_TIMEOUT,
    CONTAINER_ONLY_IMAGE,
    PID_LABEL,
    Stack,
)
from tests.integration.test_controller_cli import wait_for

pytestmark = pytest.mark.integration

stack = e2e.stack  # the controller of those tests; each test here starts its worker

# Ready one second after it starts; then answers each connection with one line.
SERVER = 'sleep 1; touch /tmp/ready; while true; do echo "$GREETING" | nc -l -p 7777; done'


def service_build(image: str, token: str) -> str:
    """A task whose main script reads one line from a TCP service in an additional container."""
    return f"""\
env:
  TOKEN: {token}
service_task:
  container:
    image: {TEST_IMAGE}
    additional_containers:
      - name: greeter
        image: {image}
        port: 7777
        env:
          GREETING: greetings-$TOKEN
        command: sh -c '{SERVER}'
        readiness_command: test -e /tmp/ready
  script: echo "got=$(nc localhost 7777 </dev/null)"
"""


def test_the_task_reaches_its_additional_container_on_localhost_and_both_are_removed(
    stack: Stack,
) -> None:
    token = uuid.uuid4().hex[:10]
    stack.start_worker(CONTAINER_ONLY_IMAGE)

    submitted = stack.submit(service_build(TEST_IMAGE, token))

    build = stack.final_build(submitted["id"])
    (task_id,) = [task["id"] for task in build["tasks"]]
    assert build["status"] == "COMPLETED", stack.log(task_id, "main")
    assert f"got=greetings-{token}" in stack.log(task_id, "main")
    task = stack.api(f"/api/v1/tasks/{task_id}")
    (service,) = task["isolation"]["container"]["additionalContainers"]
    assert (service["name"], service["image"]) == ("greeter", TEST_IMAGE)
    assert stack.worker is not None
    assert containers_labelled(f"{PID_LABEL}={stack.worker.process.pid}") == []


def test_a_service_image_the_workers_policy_refuses_keeps_the_task_scheduled(
    stack: Stack,
) -> None:
    stack.start_worker(CONTAINER_ONLY_IMAGE)

    submitted = stack.submit(
        service_build("localhost/cirrus-test-not-allowed:latest", "x")
        + 'on_host_task:\n  script: echo "ran on the host"\n'
    )

    by_name = {task["name"]: task["id"] for task in submitted["tasks"]}
    wait_for(
        lambda: stack.api(f"/api/v1/tasks/{by_name['on_host']}")["status"] == "COMPLETED",
        BUILD_TIMEOUT,
        "the on-host task to complete",
    )
    refused = stack.api(f"/api/v1/tasks/{by_name['service']}")
    assert refused["status"] == "SCHEDULED"
    assert refused["pendingReason"].startswith(
        "no worker's security policy allows the additional containers"
    )
