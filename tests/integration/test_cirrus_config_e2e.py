"""End to end: a real ``.cirrus.yml`` through a real ``cirrus controller run`` and a real
``cirrus worker run`` whose security policy allows the ``container`` isolation (podman).

The build holds the constructs that change what the controller creates and where it runs:
a ``container:`` task, an ``env: matrix:`` of three rows, an ``only_if`` that is false (the task
is left out of the build) and a ``skip: true`` (the task is created ``SKIPPED``). A worker whose
policy refuses what a task needs leaves that task ``SCHEDULED`` with a reason: never failed.

The image is the local busybox one built by ``scripts/setup-podman.sh``; no registry is reached.
Every container the worker makes carries its pid label and is removed at teardown.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.container_image import TEST_IMAGE, remove_labelled, require_podman
from tests.integration.test_controller_cli import (
    Process,
    cli,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

BUILD_TIMEOUT = 120.0
# The worker's label on its containers (adapters.container.instance), spelled out so that a
# renamed label fails the cleanup check instead of leaving containers behind unnoticed.
PID_LABEL = "org.cirruslabs.cirrus-worker.pid"

CONTAINER_ONLY_IMAGE = f"""\
security:
  allowed-isolations:
    none: {{}}
    container:
      allowed-images: ["{TEST_IMAGE}"]
"""


def full_build(host_marker: Path, token: str) -> str:
    """The build of the first test; ``token`` shows up only in the container task's log."""
    return f"""\
env:
  GREETING: hello
in_container_task:
  container:
    image: {TEST_IMAGE}
  script:
    - test -e /run/.containerenv
    - test ! -e {host_marker}
    - echo "in-the-container {token} $GREETING"
    - busybox | head -n 1
rows_task:
  env:
    matrix:
      - ROW: first-row
      - ROW: second-row
      - ROW: third-row
  script: echo "row=$ROW greeting=$GREETING"
left_out_task:
  only_if: $CIRRUS_BRANCH == 'nope'
  script: echo "must not exist"
skipped_task:
  skip: true
  script: echo "must not run"
"""


@dataclass
class Stack:
    """A controller with its tokens, and the worker started for the test."""

    tmp_path: Path
    controller: Process
    url: str
    registration_token: str
    admin_token: str
    worker: Process | None = None

    def api(self, path: str) -> Any:
        """``GET`` an API path and return its JSON answer."""
        response = httpx.get(
            self.url + path, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30
        )
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def log(self, task_id: str, command: str) -> str:
        """The log of one command of a task."""
        response = httpx.get(
            f"{self.url}/api/v1/tasks/{task_id}/logs/{command}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        assert response.status_code == 200, f"log of {task_id}/{command}: {response.text}"
        return response.text

    def submit(self, config: str, *env: str) -> dict[str, Any]:
        """``cirrus build submit FILE --json -e K=V...``; return the build it printed."""
        path = self.tmp_path / f"{uuid.uuid4().hex[:6]}.cirrus.yml"
        path.write_text(config)
        env_flags = [flag for pair in env for flag in ("-e", pair)]
        result = cli(
            self.tmp_path,
            "build",
            "submit",
            str(path),
            "--controller",
            self.url,
            "--json",
            *env_flags,
            token=self.admin_token,
        )
        assert result.returncode == 0, f"submit refused: {result.stdout}{result.stderr}"
        build: dict[str, Any] = json.loads(result.stdout)
        return build

    def start_worker(self, worker_file: str) -> None:
        """Start ``cirrus worker run -f worker.yml`` polling this controller."""
        path = self.tmp_path / "worker.yml"
        path.write_text(worker_file)
        self.worker = Process(
            self.tmp_path,
            "worker",
            [
                "worker",
                "run",
                "-f",
                str(path),
                "--name",
                "e2e-" + uuid.uuid4().hex[:8],
                "--token",
                self.registration_token,
                "--rpc-endpoint",
                self.url,
            ],
        )

    def final_build(self, build_id: str) -> dict[str, Any]:
        """Wait until the build is no longer executing; return it."""

        def final() -> dict[str, Any] | None:
            assert self.worker is None or self.worker.alive(), self.worker.stderr()
            build: dict[str, Any] = self.api(f"/api/v1/builds/{build_id}")
            return None if build["status"] == "EXECUTING" else build

        document: dict[str, Any] = wait_for(final, BUILD_TIMEOUT, f"build {build_id} to end")
        return document


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A controller on a free port of 127.0.0.1 (tmp SQLite database); the test starts the
    worker. Both are stopped at teardown, and the worker's containers removed."""
    require_podman()
    process, url = start_controller(tmp_path, tmp_path / "controller.db")
    output = process.stdout()
    the_stack = Stack(
        tmp_path,
        process,
        url,
        printed_token(output, "registration token"),
        printed_token(output, "admin token"),
    )
    try:
        yield the_stack
    finally:
        worker_code = 0
        if the_stack.worker is not None:
            worker_code = the_stack.worker.terminate()
            remove_labelled(f"{PID_LABEL}={the_stack.worker.process.pid}")
        controller_code = process.terminate()
        worker_log = the_stack.worker.stderr() if the_stack.worker else ""
        assert (worker_code, controller_code) == (0, 0), worker_log + process.stderr()


def test_a_container_task_an_env_matrix_an_only_if_and_a_skip_run_as_on_cirrus(
    stack: Stack,
) -> None:
    host_marker = stack.tmp_path / f"host-only-{uuid.uuid4().hex[:8]}"
    host_marker.write_text("on the host\n")
    token = uuid.uuid4().hex[:12]
    stack.start_worker(CONTAINER_ONLY_IMAGE)

    submitted = stack.submit(full_build(host_marker, token), "CIRRUS_BRANCH=main")

    names = sorted(task["name"] for task in submitted["tasks"])
    assert names == ["in_container", "rows", "rows", "rows", "skipped"]
    build = stack.final_build(submitted["id"])
    assert build["status"] == "COMPLETED"
    tasks = {task["id"]: stack.api(f"/api/v1/tasks/{task['id']}") for task in build["tasks"]}
    statuses = sorted((task["name"], task["status"]) for task in tasks.values())
    assert statuses == [
        ("in_container", "COMPLETED"),
        ("rows", "COMPLETED"),
        ("rows", "COMPLETED"),
        ("rows", "COMPLETED"),
        ("skipped", "SKIPPED"),
    ]

    (container_id,) = [key for key, task in tasks.items() if task["name"] == "in_container"]
    assert tasks[container_id]["isolation"]["container"]["image"] == TEST_IMAGE
    inside = stack.log(container_id, "main")
    assert f"in-the-container {token} hello" in inside
    assert "BusyBox v" in inside

    row_logs = sorted(
        stack.log(key, "main") for key, task in tasks.items() if task["name"] == "rows"
    )
    assert [log.strip() for log in row_logs] == [
        "row=first-row greeting=hello",
        "row=second-row greeting=hello",
        "row=third-row greeting=hello",
    ]

    (skipped,) = [task for task in tasks.values() if task["name"] == "skipped"]
    assert "skip" in skipped["skipReason"]
    assert skipped["worker"] in (None, "")

    # The same file on the branch the condition names: the task is there, and runs.
    on_nope = stack.submit(full_build(host_marker, token), "CIRRUS_BRANCH=nope")
    assert "left_out" in [task["name"] for task in on_nope["tasks"]]
    assert stack.final_build(on_nope["id"])["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("worker_file", "image", "missing"),
    [
        pytest.param(
            "security:\n  allowed-isolations:\n    none: {}\n",
            TEST_IMAGE,
            "container isolation",
            id="container-isolation-refused",
        ),
        pytest.param(
            CONTAINER_ONLY_IMAGE,
            "localhost/cirrus-test-not-allowed:latest",
            "container image 'localhost/cirrus-test-not-allowed:latest'",
            id="container-image-refused",
        ),
    ],
)
def test_a_container_task_the_workers_policy_refuses_waits_scheduled_with_the_reason(
    stack: Stack, worker_file: str, image: str, missing: str
) -> None:
    stack.start_worker(worker_file)

    submitted = stack.submit(
        f"""\
refused_task:
  container:
    image: {image}
  script: echo "must not run"
on_host_task:
  script: echo "ran on the host"
"""
    )

    by_name = {task["name"]: task["id"] for task in submitted["tasks"]}
    # Queued after the refused task: once it completed, the worker has polled and been passed
    # over for the refused one, which is what is checked.
    wait_for(
        lambda: stack.api(f"/api/v1/tasks/{by_name['on_host']}")["status"] == "COMPLETED",
        BUILD_TIMEOUT,
        "the on-host task to complete",
    )
    assert "ran on the host" in stack.log(by_name["on_host"], "main")
    refused = stack.api(f"/api/v1/tasks/{by_name['refused']}")
    assert refused["status"] == "SCHEDULED"
    assert refused["worker"] in (None, "")
    assert refused["failureMessage"] in (None, "")
    assert refused["pendingReason"].startswith(f"no worker's security policy allows {missing}")
    assert stack.api(f"/api/v1/builds/{submitted['id']}")["status"] == "EXECUTING"
    assert stack.worker is not None
    assert "invalid isolation parameters" not in stack.worker.stderr()
