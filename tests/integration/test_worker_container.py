"""Black-box tests of ``cirrus worker run`` with the ``container`` isolation, through podman.

The real worker runs against the fake controller; tasks ask for the local busybox image built by
``scripts/setup-podman.sh``. Every container these tests or the worker create carries the
worker's task label and is removed at teardown whatever the outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.container_image import (
    TEST_IMAGE,
    container_exists,
    containers_labelled,
    remove_labelled,
    require_podman,
    start_sleeper,
)
from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.test_worker_run import WorkerProcess, reported_statuses, task_stopped

pytestmark = pytest.mark.integration

# The worker's labels on its task containers (adapters.container.instance); spelled out here so
# that a renamed label shows up as a failing test rather than as a silently passing one.
TASK_LABEL = "org.cirruslabs.cirrus-worker.task"
PID_LABEL = "org.cirruslabs.cirrus-worker.pid"
TASK_TIMEOUT = 90


@pytest.fixture
def podman_ready() -> None:
    """Fail (never skip) when podman or the test image is missing."""
    require_podman()


def container_task(*commands: dict[str, Any], image: str = TEST_IMAGE) -> FakeTask:
    """A task isolated in a container of ``image``, with a unique id."""
    return FakeTask(
        "ctask-" + uuid.uuid4().hex[:10],
        list(commands),
        isolation={"container": {"image": image}},
    )


@pytest.fixture
def labelled_cleanup() -> Iterator[list[str]]:
    """Task ids whose containers are force-removed at teardown (if the worker left any)."""
    task_ids: list[str] = []
    yield task_ids
    for task_id in task_ids:
        remove_labelled(f"{TASK_LABEL}={task_id}")


@pytest.fixture
def worker(
    tmp_path: Any, fake_controller: FakeController, podman_ready: None
) -> Iterator[WorkerProcess]:
    """A not yet started worker bound to the fake controller; killed at teardown."""
    process = WorkerProcess(tmp_path, fake_controller)
    fake_controller.give_up_check = process.exited_early
    try:
        yield process
    finally:
        fake_controller.give_up_check = None
        process.kill()


def test_a_container_task_runs_in_the_image_and_reports_logs_and_statuses(
    worker: WorkerProcess, fake_controller: FakeController, labelled_cleanup: list[str]
) -> None:
    task = fake_controller.queue_task(
        container_task(
            script(
                "inside",
                "test -e /run/.containerenv && echo in-a-container",
                'echo "cwd=$(pwd) workdir=$CIRRUS_WORKING_DIR ci=$CI"',
                "busybox | head -n 1",
            ),
            script("broken", "echo before-failure", "exit 3", "echo not-reached"),
            script("skipped", "echo should-not-run"),
            script("always", "echo always-ran", behaviour="ALWAYS"),
        )
    )
    labelled_cleanup.append(task.task_id)
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert done.started == 1
    assert done.stopped == 1
    assert reported_statuses(done) == {
        "inside": "COMPLETED",
        "broken": "FAILED",
        "skipped": "SKIPPED",
        "always": "COMPLETED",
    }
    inside = done.log_text("inside")
    assert "in-a-container" in inside
    assert "cwd=/tmp/cirrus-ci/working-dir workdir=/tmp/cirrus-ci/working-dir ci=true" in inside
    assert "BusyBox" in inside
    assert "before-failure" in done.log_text("broken")
    assert "not-reached" not in done.log_text()
    assert "should-not-run" not in done.log_text()
    assert "always-ran" in done.log_text("always")
    # Removed before TaskStopped left, so nothing is left once the controller has it.
    assert containers_labelled(f"{TASK_LABEL}={task.task_id}") == []
    assert worker.running()
    assert "Traceback" not in worker.output()


def test_a_missing_image_fails_the_task_without_leaving_a_container(
    worker: WorkerProcess, fake_controller: FakeController, labelled_cleanup: list[str]
) -> None:
    image = f"localhost/cirrus-test-absent-{uuid.uuid4().hex[:8]}:latest"
    task = fake_controller.queue_task(container_task(script("main", "true"), image=image))
    labelled_cleanup.append(task.task_id)
    # A registry is never reached: pulling from localhost fails at once.
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.started == 0
    assert len(done.failures) == 1
    assert done.failures[0].startswith("failed to create an instance: ")
    assert done.stopped == 1
    assert containers_labelled(f"{TASK_LABEL}={task.task_id}") == []
    assert worker.running()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def test_a_worker_start_removes_containers_whose_worker_died_and_keeps_others(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    marker = "leftover-" + uuid.uuid4().hex[:8]
    orphan = f"cirrus-test-{marker}-orphan"
    alive = f"cirrus-test-{marker}-alive"
    try:
        start_sleeper(orphan, {TASK_LABEL: marker, PID_LABEL: str(dead_pid())})
        # The pid of this test process: a living worker's container must stay.
        start_sleeper(alive, {TASK_LABEL: marker, PID_LABEL: str(os.getpid())})
        worker.start()
        fake_controller.wait_for_call("Poll", timeout=30)
        fake_controller.wait_for(
            lambda: not container_exists(orphan), 60, "the orphaned container to be removed"
        )
        assert container_exists(alive)
        assert worker.running()
    finally:
        remove_labelled(f"{TASK_LABEL}={marker}")


def test_a_worker_that_may_not_run_containers_leaves_every_container_alone(
    worker: WorkerProcess,
    fake_controller: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workers of other tests running at the same time may remove the orphan themselves (they
    # may run containers): so the proof is that this worker never called the engine at all.
    # Every call of ``podman`` goes through a wrapper that logs its parent process.
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    calls = tmp_path / "podman-calls"
    real = shutil.which("podman")
    assert real is not None
    wrapper = wrappers / "podman"
    wrapper.write_text(f'#!/bin/sh\necho "$PPID $*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
    marker = "leftover-" + uuid.uuid4().hex[:8]
    orphan = f"cirrus-test-{marker}-orphan"
    try:
        start_sleeper(orphan, {TASK_LABEL: marker, PID_LABEL: str(dead_pid())})
        assert calls.read_text().strip(), "the wrapper did not log the test's own call"
        config = worker.config(security={"allowed-isolations": {"none": {}}})
        worker.start(config)
        # Three polls: long after a start-up clean-up would have listed the containers.
        fake_controller.wait_for(
            lambda: len(fake_controller.successful_calls("Poll")) >= 3, 30, "three polls"
        )
        by_worker = [
            line for line in calls.read_text().splitlines() if line.split()[0] == str(worker.pid)
        ]
        assert by_worker == []
        assert worker.running()
    finally:
        remove_labelled(f"{TASK_LABEL}={marker}")
