"""Black-box test of the worker's ``clone`` command for a container task whose image has no
git (busybox): the worker clones on its host and copies the files into the container."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.fake_controller import FakeController, command, script
from tests.integration.git_servers import Repo, git_daemon
from tests.integration.test_worker_container import TASK_TIMEOUT, container_task
from tests.integration.test_worker_container import (  # the fixtures, shared
    labelled_cleanup as labelled_cleanup,
)
from tests.integration.test_worker_container import (
    podman_ready as podman_ready,
)
from tests.integration.test_worker_container import (
    worker as worker,
)
from tests.integration.test_worker_run import WorkerProcess, reported_statuses, task_stopped

pytestmark = pytest.mark.integration


def test_a_container_task_without_git_in_its_image_gets_the_files_of_the_commit(
    worker: WorkerProcess,
    fake_controller: FakeController,
    labelled_cleanup: list[str],
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "srv", "app")
    first = repo.commit({"src/main.txt": "first\n", "run.sh": "echo ran\n"}, "first")
    repo.commit({"src/main.txt": "second\n"}, "second")
    with git_daemon(tmp_path / "srv") as base:
        task = container_task(
            command("clone", {"cloneInstruction": {}}),
            script(
                "check",
                "command -v git || echo no-git-here",
                "cat src/main.txt",
                "sh run.sh",
                "test -d .git && echo has-dot-git",
            ),
            script("elsewhere", "cat /tmp/moved/sub/src/main.txt"),
        )
        task.environment = {
            "CIRRUS_REPO_CLONE_URL": f"{base}/app.git",
            "CIRRUS_BRANCH": "main",
            "CIRRUS_CHANGE_IN_REPO": first,
        }
        moved = container_task(
            command("clone", {"cloneInstruction": {}}),
            script("check", "pwd", "cat src/main.txt"),
        )
        moved.environment = {**task.environment, "CIRRUS_WORKING_DIR": "/tmp/moved/sub"}
        for queued in (task, moved):
            fake_controller.queue_task(queued)
            labelled_cleanup.append(queued.task_id)
        worker.start()
        done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
        done_moved = task_stopped(fake_controller, moved.task_id, TASK_TIMEOUT)

    statuses = reported_statuses(done)
    assert statuses["clone"] == "COMPLETED", done.log_text()
    assert statuses["check"] == "COMPLETED", done.log_text()
    assert done.log_text("check") == "no-git-here\nfirst\nran\nhas-dot-git\n"
    assert reported_statuses(done_moved) == {"clone": "COMPLETED", "check": "COMPLETED"}
    assert done_moved.log_text("check") == "/tmp/moved/sub\nfirst\n"
