"""``cirrus worker run`` draws a live status view on a terminal, and plain log lines elsewhere.

The terminal is a pseudo-terminal of this test (its size set to 200x50); the worker runs against
the fake controller with a task that waits until the test has seen it in the view.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.child_environment import child_environment
from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.test_worker_run import CIRRUS, WorkerProcess, task_stopped

pytestmark = pytest.mark.integration

ESCAPE = b"\x1b["
# Control sequences, so that the view's text can be searched as the terminal shows it.
CONTROL = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class TerminalWorker:
    """``cirrus worker run`` with stdout and stderr on a pseudo-terminal read by the test."""

    def __init__(self, tmp_path: Path, controller: FakeController) -> None:
        self.tmp_path = tmp_path
        self.controller = controller
        self.name = "tty-" + uuid.uuid4().hex[:8]
        self.process: subprocess.Popen[bytes] | None = None
        self.master = -1
        self.received = bytearray()

    def start(self) -> None:
        """Write a config (no log file) and start the worker on a fresh pseudo-terminal."""
        config = {
            "name": self.name,
            "token": self.controller.registration_token,
            "rpc": {"endpoint": self.controller.url},
            "resources": {"slots": 2},
        }
        config_path = self.tmp_path / "worker.yml"
        config_path.write_text(yaml.safe_dump(config))
        work_tmp = self.tmp_path / "tmp"
        work_tmp.mkdir(exist_ok=True)
        env = child_environment()
        env.update(TMPDIR=str(work_tmp), TERM="xterm-256color", COLUMNS="200", LINES="50")
        env.pop("NO_COLOR", None)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        try:
            self.process = subprocess.Popen(
                [str(CIRRUS), "worker", "run", "-f", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        finally:
            os.close(slave)

    def exited_early(self) -> str | None:
        """Why waiting is pointless: the worker is gone."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"worker exited with {self.process.returncode}; output:\n{self.screen()[-3000:]}"

    def read_available(self, wait: float = 0.05) -> None:
        """Append whatever the terminal has received so far."""
        while True:
            ready, _, _ = select.select([self.master], [], [], wait)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            self.received.extend(chunk)
            wait = 0

    def screen(self) -> str:
        """Everything received, without control sequences."""
        return CONTROL.sub(b"", bytes(self.received)).decode(errors="replace")

    def wait_for_text(self, *texts: str, timeout: float = 30) -> None:
        """Read until every one of ``texts`` has appeared; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not all(text in self.screen() for text in texts):
            hopeless = self.exited_early()
            if hopeless:
                raise AssertionError(hopeless)
            if time.monotonic() > deadline:
                missing = [text for text in texts if text not in self.screen()]
                raise AssertionError(f"{missing} not shown; screen:\n{self.screen()[-3000:]}")
            self.read_available()

    def wait_exit(self, timeout: float) -> int:
        """The exit code, reading the terminal meanwhile (a full terminal would block it)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker still running; screen:\n{self.screen()[-3000:]}")
            self.read_available()
        self.read_available()
        return self.process.returncode

    def kill(self) -> None:
        """Kill the worker's whole session and close the terminal (teardown)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def terminal_worker(tmp_path: Path, fake_controller: FakeController) -> Iterator[TerminalWorker]:
    """A not yet started worker on a pseudo-terminal; killed at teardown."""
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    worker = TerminalWorker(tmp_path, fake_controller)
    fake_controller.give_up_check = worker.exited_early
    try:
        yield worker
    finally:
        fake_controller.give_up_check = None
        worker.kill()


def waiting_task(release: Path) -> FakeTask:
    """A task whose one command waits until ``release`` exists (at most a minute)."""
    wait = f"i=0; while [ ! -e '{release}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"
    return FakeTask("view-" + uuid.uuid4().hex[:10], [script("main", wait, "echo released")])


def test_on_a_terminal_the_worker_shows_its_name_controller_and_running_task(
    terminal_worker: TerminalWorker, fake_controller: FakeController, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    task = fake_controller.queue_task(waiting_task(release))
    terminal_worker.start()

    terminal_worker.wait_for_text(
        f"cirrus worker {terminal_worker.name}",
        fake_controller.url,
        "Running tasks",
        task.task_id,
        "running commands",
    )
    assert ESCAPE in terminal_worker.received
    release.touch()
    done = task_stopped(fake_controller, task.task_id, 30)
    assert done.final_statuses() == {"main": "COMPLETED"}
    assert terminal_worker.process is not None
    terminal_worker.process.send_signal(signal.SIGTERM)
    assert terminal_worker.wait_exit(30) == 0
    assert "Traceback" not in terminal_worker.screen()


def test_off_a_terminal_the_worker_prints_plain_lines_without_escapes(
    tmp_path: Path, fake_controller: FakeController
) -> None:
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    worker = WorkerProcess(tmp_path, fake_controller)
    fake_controller.give_up_check = worker.exited_early
    try:
        config = worker.config(log={"level": "info"})
        task = fake_controller.queue_task(
            FakeTask("plain-" + uuid.uuid4().hex[:10], [script("main", "echo hi")])
        )
        worker.start(config)
        task_stopped(fake_controller, task.task_id, 30)
        worker.send(signal.SIGTERM)
        assert worker.wait_exit(30) == 0
        output = worker.output()
        assert f"started task {task.task_id}" in output
        assert "\x1b" not in output
        assert "Running tasks" not in output
    finally:
        fake_controller.give_up_check = None
        worker.kill()
