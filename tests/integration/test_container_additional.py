"""Additional containers of the ``container`` isolation against real podman.

A service container shares the network namespace of the task's container (both run with no
network of their own), is ready before the first script runs, and is gone after the task, or
after a failed start, a cancellation, or a dead worker (leftovers cleanup).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from adapters.container import PID_LABEL, TASK_LABEL, ContainerInstanceFactory, remove_leftovers
from adapters.container.additional import ADDITIONAL_LABEL
from domain.errors import InstanceError
from domain.isolation import AdditionalContainer, ContainerIsolation, PortMapping
from tests.integration.container_image import (
    TEST_IMAGE,
    container_exists,
    containers_labelled,
    podman,
    remove_labelled,
    require_podman,
    start_sleeper,
)

pytestmark = pytest.mark.integration

# A one-shot-per-connection TCP server: each client gets one greeting line.
SERVER = 'while true; do echo "hello from $GREETING" | nc -l -p 7777; done'


class RecordingSink:
    """Keeps every chunk it is given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def server(**changes: object) -> AdditionalContainer:
    """The busybox greeting server on port 7777, with ``changes``."""
    fields: dict[str, object] = {
        "name": "greeter",
        "image": TEST_IMAGE,
        "environment": {"GREETING": "the sidecar"},
        "command": ("sh", "-c", SERVER),
        "container_port": 7777,
        "ports": (PortMapping(container_port=7777),),
    }
    fields.update(changes)
    return AdditionalContainer(**fields)  # type: ignore[arg-type]


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped): a worker killed with SIGKILL."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def task_id() -> Iterator[str]:
    """A task id unique to the test; its containers are force-removed at teardown."""
    require_podman()
    ident = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield ident
    finally:
        remove_labelled(f"{TASK_LABEL}={ident}")


@pytest.fixture
def factory(tmp_path: Path) -> ContainerInstanceFactory:
    return ContainerInstanceFactory(
        "podman", grace_seconds=1.0, network="none", base_dir=str(tmp_path), readiness_seconds=30
    )


async def test_the_task_reaches_its_additional_container_on_localhost_and_nothing_is_left(
    factory: ContainerInstanceFactory, task_id: str
) -> None:
    # The server starts listening only after a second: readiness waits for the port.
    slow = server(command=("sh", "-c", f"sleep 1; {SERVER}"))
    instance = await factory.create(
        task_id, ContainerIsolation(image=TEST_IMAGE, additional_containers=(slow,))
    )
    sink = RecordingSink()
    try:
        status = await instance.run_script("nc localhost 7777 </dev/null", {}, sink)
        labelled = containers_labelled(f"{TASK_LABEL}={task_id}")
        additional = containers_labelled(ADDITIONAL_LABEL + "=greeter")
    finally:
        await instance.close()
    assert (status, sink.data) == (0, b"hello from the sidecar\n")
    assert len(labelled) == 2
    assert len(set(additional) & set(labelled)) == 1
    assert containers_labelled(f"{TASK_LABEL}={task_id}") == []


async def test_the_readiness_command_must_succeed_before_the_first_script_runs(
    factory: ContainerInstanceFactory, task_id: str
) -> None:
    # The service marks itself ready by a file, two seconds after it starts; no port declared.
    late = server(
        command=("sh", "-c", f"sleep 2; touch /tmp/ready; {SERVER}"),
        readiness_command=("test", "-e", "/tmp/ready"),
        container_port=0,
        ports=(),
    )
    instance = await factory.create(
        task_id, ContainerIsolation(image=TEST_IMAGE, additional_containers=(late,))
    )
    sink = RecordingSink()
    try:
        status = await instance.run_script("nc localhost 7777 </dev/null", {}, sink)
    finally:
        await instance.close()
    assert (status, sink.data) == (0, b"hello from the sidecar\n")


async def test_a_service_that_never_gets_ready_fails_the_start_and_leaves_nothing(
    tmp_path: Path, task_id: str
) -> None:
    impatient = ContainerInstanceFactory(
        "podman", network="none", base_dir=str(tmp_path), readiness_seconds=1.5
    )
    never = server(readiness_command=("false",), command=("sleep", "infinity"))
    with pytest.raises(InstanceError, match=r"'greeter' was not ready after 1\.5 s"):
        await impatient.create(
            task_id, ContainerIsolation(image=TEST_IMAGE, additional_containers=(never,))
        )
    assert containers_labelled(f"{TASK_LABEL}={task_id}") == []
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


async def test_a_service_that_exits_fails_the_start_with_its_last_output(
    factory: ContainerInstanceFactory, task_id: str
) -> None:
    crashing = server(command=("sh", "-c", "echo cannot bind >&2; exit 7"))
    with pytest.raises(InstanceError, match=r"'greeter' stopped .*exit status 7.*cannot bind"):
        await factory.create(
            task_id, ContainerIsolation(image=TEST_IMAGE, additional_containers=(crashing,))
        )
    assert containers_labelled(f"{TASK_LABEL}={task_id}") == []


async def test_cancelling_the_start_while_waiting_for_readiness_leaves_nothing(
    factory: ContainerInstanceFactory, task_id: str
) -> None:
    never = server(command=("sleep", "infinity"))  # port 7777 never listens
    creating = asyncio.create_task(
        factory.create(
            task_id, ContainerIsolation(image=TEST_IMAGE, additional_containers=(never,))
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(containers_labelled(f"{TASK_LABEL}={task_id}")) < 2:
        assert loop.time() < deadline, "the additional container never started"
        await asyncio.sleep(0.1)
    creating.cancel()
    with pytest.raises(asyncio.CancelledError):
        await creating
    assert containers_labelled(f"{TASK_LABEL}={task_id}") == []


async def test_the_leftovers_cleanup_removes_additional_containers_of_a_dead_worker(
    task_id: str,
) -> None:
    labels = {TASK_LABEL: task_id, PID_LABEL: str(dead_pid())}
    main = start_sleeper(f"{task_id}-main", labels)
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    additional = podman(
        *("run", "--detach", "--name", f"{task_id}-main-db", *label_args),
        *("--label", f"{ADDITIONAL_LABEL}=db", "--network", f"container:{main}"),
        *("--entrypoint", "sleep", TEST_IMAGE, "infinity"),
    ).stdout.strip()
    removed = await remove_leftovers("podman", psutil.pid_exists)
    assert {main, additional} <= set(removed)
    assert not container_exists(main)
    assert not container_exists(additional)
