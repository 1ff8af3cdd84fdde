"""``cirrus run`` with ``container:`` tasks in the local podman: Ctrl-C stops the build and the
containers it started (a second Ctrl-C exits at once), and ``--dirty`` mounts the project
directory as the task's working directory.

The image is the local busybox one of ``scripts/setup-podman.sh``. The embedded worker runs in
the ``cirrus run`` process, so its containers carry that process's id in the worker's pid label:
the tests find them by it, and remove whatever is left at teardown.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.container_image import (
    TEST_IMAGE,
    containers_labelled,
    remove_labelled,
    require_podman,
)
from tests.integration.git_servers import git
from tests.integration.test_cirrus_run_signals import DEADLINE_SECONDS, read_until, started_run
from tests.integration.test_local_run import cirrus_run

pytestmark = pytest.mark.integration

# The worker's label on its containers (adapters.container.instance), spelled out so that a
# renamed label fails these tests instead of letting containers go unnoticed.
PID_LABEL = "org.cirruslabs.cirrus-worker.pid"


@pytest.fixture
def run_pids() -> Iterator[list[int]]:
    """Pids of the ``cirrus run`` processes of the test: their containers are removed after."""
    require_podman()
    pids: list[int] = []
    yield pids
    for pid in pids:
        remove_labelled(f"{PID_LABEL}={pid}")


def sleeping_container_build(marker: str, *, ignore_term: bool) -> str:
    """One container task that prints ``marker`` then sleeps (ignoring SIGTERM if asked)."""
    trap = "    - trap '' TERM\n" if ignore_term else ""
    return (
        f"container:\n  image: {TEST_IMAGE}\n"
        f"task:\n  script:\n{trap}"
        f'    - echo "{marker}"\n    - sleep 300\n'
    )


def wait_for_containers(pid: int) -> list[str]:
    """The containers of the ``cirrus run`` process ``pid``, once there is one."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        found = containers_labelled(f"{PID_LABEL}={pid}")
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no container labelled {PID_LABEL}={pid}")


def test_the_first_ctrl_c_stops_the_build_and_removes_the_containers_it_started(
    tmp_path: Path, run_pids: list[int]
) -> None:
    marker = f"sleeping-{uuid.uuid4().hex[:8]}"
    (tmp_path / ".cirrus.yml").write_text(sleeping_container_build(marker, ignore_term=False))
    with started_run(tmp_path) as process:
        run_pids.append(process.pid)
        read_until(process, f"main:main | {marker}")
        assert wait_for_containers(process.pid)

        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=DEADLINE_SECONDS)

        assert process.returncode == 1, stdout + stderr
        assert "SIGINT: cancelling the build (again to exit at once)" in stderr
        assert "main (task 1): ABORTED" in stdout
        assert stdout.rstrip().splitlines()[-1] == "build 1: ABORTED"
        assert "Traceback" not in stderr
        # Checked once cirrus run has exited: nothing of the run is left in podman.
        assert containers_labelled(f"{PID_LABEL}={process.pid}") == []


def test_a_second_ctrl_c_exits_at_once_while_the_container_task_ignores_the_first(
    tmp_path: Path, run_pids: list[int]
) -> None:
    marker = f"stubborn-{uuid.uuid4().hex[:8]}"
    (tmp_path / ".cirrus.yml").write_text(sleeping_container_build(marker, ignore_term=True))
    with started_run(tmp_path) as process:
        run_pids.append(process.pid)
        read_until(process, f"main:main | {marker}")
        assert wait_for_containers(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        assert "cancelling the build" in process.stderr.readline()
        started = time.monotonic()

        process.send_signal(signal.SIGINT)
        process.wait(timeout=DEADLINE_SECONDS)

        assert process.returncode == 128 + signal.SIGINT
        assert time.monotonic() - started < 5


def test_dirty_mounts_the_project_directory_as_the_container_tasks_working_directory(
    tmp_path: Path,
) -> None:
    require_podman()
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "--quiet")
    (project / ".gitignore").write_text("ignored/\n")
    (project / "tracked.txt").write_text("committed\n")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "first")
    # Uncommitted: a changed tracked file, an untracked file, and an ignored one (a copy of the
    # project would leave the last out; the directory itself has it).
    (project / "tracked.txt").write_text("changed, not committed\n")
    (project / "untracked.txt").write_text("never added\n")
    (project / "ignored").mkdir()
    (project / "ignored" / "local.txt").write_text("ignored by git\n")
    token = uuid.uuid4().hex[:12]
    (project / ".cirrus.yml").write_text(
        f"""\
container:
  image: {TEST_IMAGE}
dirty_task:
  script:
    - test -e /run/.containerenv
    - echo "pwd=$(pwd) working=$CIRRUS_WORKING_DIR"
    - cat tracked.txt untracked.txt ignored/local.txt
    - echo "{token}" > made-by-the-task.txt
"""
    )

    result = cirrus_run(project, "--dirty")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "dirty:main | pwd=/tmp/cirrus-ci-build working=/tmp/cirrus-ci-build" in result.stdout
    assert "dirty:main | changed, not committed" in result.stdout
    assert "dirty:main | never added" in result.stdout
    assert "dirty:main | ignored by git" in result.stdout
    assert (project / "made-by-the-task.txt").read_text() == f"{token}\n"
    assert "build 1: COMPLETED" in result.stdout


def test_without_dirty_the_container_task_works_on_a_copy_of_the_project(
    tmp_path: Path,
) -> None:
    require_podman()
    # The counterpart of the test above: the same kind of build leaves the project untouched.
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "local.txt").write_text("ignored by git\n")
    (tmp_path / ".cirrus.yml").write_text(
        f"""\
container:
  image: {TEST_IMAGE}
copy_task:
  script:
    - test ! -e ignored/local.txt
    - echo copied > made-by-the-task.txt
    - echo "copy-done"
"""
    )

    result = cirrus_run(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "copy:main | copy-done" in result.stdout
    assert not (tmp_path / "made-by-the-task.txt").exists()
