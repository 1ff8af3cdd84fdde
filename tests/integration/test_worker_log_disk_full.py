"""A real ``cirrus worker run`` whose log file's disk fills, then has room again.

The disk is a 64 KiB tmpfs filled to the last block when this process may mount one (root in a
container); elsewhere the log path is a symlink to ``/dev/full``, whose every write fails with
ENOSPC just as a full disk's does, and room "returns" when the symlink is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.fake_controller import FakeController, FakeTask, script
from tests.integration.test_worker_run import CIRRUS, WorkerProcess, task_stopped

pytestmark = pytest.mark.integration

NOTICE = "cannot write the log file"


@dataclass
class FullLogDisk:
    """Where the worker logs, on a disk that is full until ``make_room``."""

    log_file: Path
    filler: Path | None  # on a tmpfs: the file that takes every block

    def make_room(self) -> None:
        """Free the disk (tmpfs: delete the filler; else: the path stops being /dev/full)."""
        if self.filler is not None:
            self.filler.unlink()
        else:
            self.log_file.unlink()


def _mount_tmpfs(where: Path) -> bool:
    where.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _fill(filler: Path) -> None:
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(b"x" * 4096)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                return


@pytest.fixture
def full_log_disk(tmp_path: Path) -> Iterator[FullLogDisk]:
    """A log path on a full disk; unmounted at teardown (after the worker is killed)."""
    mount_point = tmp_path / "logs"
    if os.geteuid() == 0 and _mount_tmpfs(mount_point):
        log_file = mount_point / "worker.log"
        log_file.touch()
        filler = mount_point / "filler"
        _fill(filler)
        try:
            yield FullLogDisk(log_file, filler)
        finally:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
        return
    mount_point.mkdir(exist_ok=True)
    log_file = mount_point / "worker.log"
    log_file.symlink_to("/dev/full")
    yield FullLogDisk(log_file, None)


@pytest.fixture
def worker(tmp_path: Path, fake_controller: FakeController) -> Iterator[WorkerProcess]:
    """A not yet started worker against the fake controller; killed at teardown."""
    if not CIRRUS.exists():
        pytest.fail(f"console script {CIRRUS} is not installed")
    process = WorkerProcess(tmp_path, fake_controller)
    fake_controller.give_up_check = process.exited_early
    try:
        yield process
    finally:
        fake_controller.give_up_check = None
        process.kill()


def quick_task() -> FakeTask:
    """A task whose one command echoes a line."""
    return FakeTask("disk-" + uuid.uuid4().hex[:10], [script("main", "echo hi")])


def wait_for_log(log_file: Path, *texts: str, timeout: float = 30) -> str:
    """The log file's text once it holds every one of ``texts``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            text = log_file.read_text(errors="replace")
            if all(t in text for t in texts):
                return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{texts} not all in {log_file}")
        time.sleep(0.1)


def test_a_full_log_disk_is_said_once_on_stderr_and_logging_resumes_when_room_returns(
    worker: WorkerProcess, fake_controller: FakeController, full_log_disk: FullLogDisk
) -> None:
    config = worker.config(log={"level": "debug", "file": str(full_log_disk.log_file)})
    first = fake_controller.queue_task(quick_task())
    worker.start(config)
    task_stopped(fake_controller, first.task_id, 30)
    # Each poll and task logs debug lines: by now dozens of records have failed.
    fake_controller.wait_for(
        lambda: len(fake_controller.calls("Poll")) >= 4, 30, "four polls while the disk is full"
    )

    stderr = worker.stderr()
    assert stderr.count(NOTICE) == 1, stderr[-3000:]
    assert str(full_log_disk.log_file) in stderr
    assert "No space left on device" in stderr
    assert "Logging error" not in stderr
    assert "Traceback" not in stderr

    full_log_disk.make_room()
    second = fake_controller.queue_task(quick_task())
    task_stopped(fake_controller, second.task_id, 30)
    text = wait_for_log(
        full_log_disk.log_file, "log record(s) were lost while", f"started task {second.task_id}"
    )
    assert f"started task {first.task_id}" not in text
    assert "is written again" in worker.stderr()
    assert worker.stderr().count(NOTICE) == 1
