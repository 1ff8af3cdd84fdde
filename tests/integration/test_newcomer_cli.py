"""What a newcomer hit (issue 14, items 15, 18 and 19), shown with real ``cirrus`` processes:
``worker pause`` says what it paused, Ctrl-C on ``build submit --follow`` leaves the build
running and says how to cancel it, ``build cancel`` and ``task cancel`` say what they did, and
``controller run --check`` neither creates a database nor hides a YAML error's file."""

from __future__ import annotations

import json
import re
import signal
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_controller_cli import (
    BUILD_TIMEOUT,
    START_TIMEOUT,
    Process,
    cli,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

SLOW_BUILD = """\
slow_task:
  script: sleep 120
later_task:
  depends_on: slow
  script: echo never
"""


@dataclass
class Stack:
    """A controller with one worker polling it, and a directory for a test's files."""

    url: str
    registration: str
    admin: str
    worker_name: str
    tmp_path: Path

    def api(self, *args: str) -> Any:
        """Run a user command with ``--json`` and return its parsed output."""
        result = cli(self.tmp_path, *args, "--controller", self.url, "--json", token=self.admin)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def build_status(self, build_id: str) -> dict[str, Any]:
        """``cirrus build status ID --json``."""
        document: dict[str, Any] = self.api("build", "status", build_id)
        return document

    def wait_for_status(self, build_id: str, task: int, status: str) -> None:
        """Wait until the build's ``task``-th task has ``status``."""
        wait_for(
            lambda: self.build_status(build_id)["tasks"][task]["status"] == status,
            BUILD_TIMEOUT,
            f"task {task} of build {build_id} to be {status}",
        )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A controller (tmp SQLite) and one registered worker, shared by this module's tests."""
    tmp_path = tmp_path_factory.mktemp("newcomer")
    controller, url = start_controller(tmp_path, tmp_path / "controller.db")
    output = controller.stdout()
    registration = printed_token(output, "registration token")
    admin = printed_token(output, "admin token")
    name = "newcomer-" + uuid.uuid4().hex[:8]
    worker = Process(
        tmp_path,
        "worker",
        ["worker", "run", "--name", name, "--token", registration, "--rpc-endpoint", url],
    )
    stack = Stack(url, registration, admin, name, tmp_path)
    try:
        wait_for(
            lambda: any(w["name"] == name for w in stack.api("workers", "list")),
            START_TIMEOUT,
            "the worker to register",
        )
        yield stack
    finally:
        worker_code = worker.terminate()
        controller_code = controller.terminate()
        assert (worker_code, controller_code) == (0, 0), worker.stderr() + controller.stderr()


@pytest.fixture
def stack(running: Stack, tmp_path: Path) -> Stack:
    """The running stack with this test's own directory."""
    return Stack(running.url, running.registration, running.admin, running.worker_name, tmp_path)


def submit_slow(stack: Stack) -> tuple[str, str, str]:
    """Submit ``SLOW_BUILD``; return the build id and its two task ids."""
    path = stack.tmp_path / "slow.cirrus.yml"
    path.write_text(SLOW_BUILD)
    build = stack.api("build", "submit", str(path))
    slow, later = (task["id"] for task in build["tasks"])
    return build["id"], slow, later


# --- item 15: worker pause ------------------------------------------------------------------


def test_worker_pause_without_a_name_says_that_no_worker_was_paused_and_exits_1(
    stack: Stack,
) -> None:
    result = cli(
        stack.tmp_path,
        "worker",
        "pause",
        "--token",
        stack.registration,
        "--rpc-endpoint",
        stack.url,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    host = socket.gethostname()
    assert f"worker {host!r} is not registered on {stack.url}" in result.stderr
    assert "no worker was paused" in result.stderr
    assert "--name" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_pause_and_resume_by_name_say_which_worker_changed(stack: Stack) -> None:
    flags = (
        "--name",
        stack.worker_name,
        "--token",
        stack.registration,
        "--rpc-endpoint",
        stack.url,
    )
    try:
        paused = cli(stack.tmp_path, "worker", "pause", *flags)
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.strip() == f"worker {stack.worker_name!r} paused on {stack.url}"
    finally:
        resumed = cli(stack.tmp_path, "worker", "resume", *flags)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == f"worker {stack.worker_name!r} resumed on {stack.url}"


# --- item 18: Ctrl-C on --follow, build cancel, task cancel ---------------------------------


def test_ctrl_c_on_a_followed_build_says_it_continues_and_build_cancel_stops_it(
    stack: Stack,
) -> None:
    path = stack.tmp_path / "followed.cirrus.yml"
    path.write_text(SLOW_BUILD)
    follower = Process(
        stack.tmp_path,
        "follow",
        [
            "build",
            "submit",
            str(path),
            "--follow",
            "--controller",
            stack.url,
            "--token",
            stack.admin,
        ],
    )
    try:
        first = wait_for(
            lambda: re.search(r"^build (\S+): ", follower.stdout(), re.M), START_TIMEOUT, "submit"
        )
        build_id = first.group(1)
        stack.wait_for_status(build_id, 0, "EXECUTING")
        follower.process.send_signal(signal.SIGINT)
        assert follower.process.wait(timeout=30) == 1
    finally:
        follower.kill_session()
    try:
        check_interrupted_then_cancel(stack, follower, build_id)
    finally:
        stack.api("build", "cancel", build_id)  # the slow task must not outlive a failure


def check_interrupted_then_cancel(stack: Stack, follower: Process, build_id: str) -> None:
    """The follower's Ctrl-C message, then ``build cancel`` of the build that went on."""
    stderr = follower.stderr()
    assert "Aborted!" not in stderr
    assert stderr.strip() == (
        f"cirrus: stopped following build {build_id}; it continues "
        f"(cancel: `cirrus build cancel {build_id}`)"
    )
    assert stack.build_status(build_id)["status"] not in ("ABORTED", "FAILED")

    cancelled = cli(
        stack.tmp_path, "build", "cancel", build_id, "--controller", stack.url, token=stack.admin
    )
    assert cancelled.returncode == 0, cancelled.stderr
    lines = cancelled.stdout.splitlines()
    slow, later = (task["id"] for task in stack.build_status(build_id)["tasks"])
    assert lines[0].startswith(f"task {slow}: cancel requested"), lines
    assert lines[1] == f"task {later}: cancelled (ABORTED)", lines
    wait_for(
        lambda: stack.build_status(build_id)["status"] == "ABORTED",
        BUILD_TIMEOUT,
        "the build to be aborted",
    )
    again = cli(
        stack.tmp_path, "build", "cancel", build_id, "--controller", stack.url, token=stack.admin
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"build {build_id}: nothing to cancel, every task has ended"


def test_task_cancel_of_a_running_task_says_cancel_requested(stack: Stack) -> None:
    build_id, slow, _later = submit_slow(stack)
    try:
        stack.wait_for_status(build_id, 0, "EXECUTING")
        result = cli(
            stack.tmp_path, "task", "cancel", slow, "--controller", stack.url, token=stack.admin
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"task {slow}: cancel requested (still EXECUTING"), (
            result.stdout
        )
    finally:
        stack.api("build", "cancel", build_id)
    stack.wait_for_status(build_id, 0, "ABORTED")


# --- item 19: controller run --check and the controller file's YAML errors ------------------


def test_controller_check_does_not_create_a_missing_database_and_says_so(tmp_path: Path) -> None:
    database = tmp_path / "not-yet" / "controller.db"
    result = cli(
        tmp_path,
        "controller",
        "run",
        "--listen",
        "127.0.0.1:0",
        "--database",
        f"sqlite:///{database}",
        "--check",
    )
    assert result.returncode == 0, result.stderr
    assert f"database: sqlite:///{database} does not exist yet" in result.stdout
    assert "not created by --check" in result.stdout
    assert not database.exists()
    assert not database.parent.exists()


def test_a_yaml_error_in_the_controller_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "controller.yml"
    path.write_text("listen: 127.0.0.1:0\ndatabase: [unclosed\n")
    result = cli(tmp_path, "controller", "run", "-f", str(path), "--check")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"cirrus: {path}: invalid YAML at line 3, column 1")
    assert "<unicode string>" not in lines[0]
