"""Ctrl-C on ``cirrus run``: the first stops the build and what it started, the second exits
at once. ``cirrus run`` is a real process in its own session, interrupted with SIGINT."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.child_environment import child_environment
from tests.integration.test_local_run import session_processes

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
DEADLINE_SECONDS = 60.0


@contextlib.contextmanager
def started_run(cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """``cirrus run`` in ``cwd`` with its stdout line-buffered; its session is killed after."""
    process = subprocess.Popen(
        [str(CIRRUS), "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        for proc in session_processes(process.pid):
            with contextlib.suppress(Exception):
                proc.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


def read_until(process: subprocess.Popen[str], text: str) -> list[str]:
    """Read stdout lines until one contains ``text``; return them."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no line with {text!r} in:\n{''.join(lines)}")


def test_the_first_ctrl_c_aborts_the_build_and_leaves_no_task_process(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text(
        'task:\n  script:\n    - echo "sleeping now"\n    - sleep 300\n'
    )
    with started_run(tmp_path) as process:
        read_until(process, "main:main | sleeping now")
        started = time.monotonic()

        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=DEADLINE_SECONDS)

        assert process.returncode == 1, stdout + stderr
        assert time.monotonic() - started < 30
        assert "SIGINT: cancelling the build (again to exit at once)" in stderr
        assert "main (task 1): ABORTED" in stdout
        assert stdout.rstrip().splitlines()[-1] == "build 1: ABORTED"
        assert session_processes(process.pid) == []


def test_a_second_ctrl_c_exits_at_once_while_the_first_still_waits(tmp_path: Path) -> None:
    # The script ignores SIGTERM, so cancelling it waits out the worker's grace period.
    (tmp_path / ".cirrus.yml").write_text(
        "task:\n  script:\n    - trap '' TERM\n    - echo stubborn\n    - sleep 300\n"
    )
    with started_run(tmp_path) as process:
        read_until(process, "main:main | stubborn")
        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        assert "cancelling the build" in process.stderr.readline()
        started = time.monotonic()

        process.send_signal(signal.SIGINT)
        process.wait(timeout=DEADLINE_SECONDS)

        assert process.returncode == 128 + signal.SIGINT
        assert time.monotonic() - started < 5
