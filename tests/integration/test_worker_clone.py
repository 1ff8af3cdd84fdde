"""Black-box tests of the worker's ``clone`` command on the host: a private repository over
``git http-backend`` with the per-task token, a wrong token, and a controller snapshot."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.integration.fake_controller import CLONE, FakeController, script
from tests.integration.git_servers import Repo, http_backend
from tests.integration.test_source_fetch import snapshot_archive
from tests.integration.test_worker_run import (
    WorkerProcess,
    new_task,
    reported_statuses,
    task_stopped,
)
from tests.integration.test_worker_run import (
    worker as worker,  # the fixture, shared
)

pytestmark = pytest.mark.integration

TIMEOUT = 60
TOKEN = "per-task-clone-token-1234"


def test_a_private_repository_clones_at_the_commit_with_the_token_which_stays_out_of_files_and_logs(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "srv", "private")
    first = repo.commit({"src/app.txt": "first\n"}, "first")
    repo.commit({"src/app.txt": "moved on\n"}, "second")
    with http_backend(tmp_path / "srv", TOKEN) as base:
        source = {
            "CIRRUS_REPO_CLONE_URL": f"{base}/private.git",
            "CIRRUS_BRANCH": "main",
            "CIRRUS_CHANGE_IN_REPO": first,
        }
        good = fake_controller.queue_task(
            new_task(
                CLONE,
                script("check", "git rev-parse HEAD", "cat src/app.txt", "cat .git/config"),
                environment={**source, "CIRRUS_REPO_CLONE_TOKEN": TOKEN},
                secrets_to_mask=[TOKEN],
            )
        )
        # Not in secretsToMask: the clone itself keeps the token out of its log.
        wrong = fake_controller.queue_task(
            new_task(
                CLONE,
                script("never", "echo never-ran"),
                environment={**source, "CIRRUS_REPO_CLONE_TOKEN": "wrong-" + TOKEN},
            )
        )
        worker.start()
        done = task_stopped(fake_controller, good.task_id, TIMEOUT)
        failed = task_stopped(fake_controller, wrong.task_id, TIMEOUT)

    assert reported_statuses(done) == {"clone": "COMPLETED", "check": "COMPLETED"}, done.log_text()
    check = done.log_text("check")
    assert check.startswith(f"{first}\nfirst\n")
    assert f"url = {base}/private.git" in check
    assert TOKEN not in done.log_text()
    assert "Hard resetting to" in done.log_text("clone")

    assert reported_statuses(failed) == {"clone": "FAILED", "never": "SKIPPED"}
    clone_log = failed.log_text("clone")
    assert "git clone failed: fatal: Authentication failed" in clone_log
    assert TOKEN not in clone_log


def test_a_snapshot_source_is_downloaded_from_the_controller_into_the_working_directory(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    archive = snapshot_archive({"src/test_one.py": b"print('from the snapshot')\n"})
    fake_controller.snapshots["snap-e2e"] = archive
    snapshot = {
        "CIRRUS_SNAPSHOT": "snap-e2e",
        "CIRRUS_SNAPSHOT_SHA256": hashlib.sha256(archive).hexdigest(),
    }
    task = fake_controller.queue_task(
        new_task(CLONE, script("check", "cat src/test_one.py"), environment=snapshot)
    )
    corrupt = fake_controller.queue_task(
        new_task(
            CLONE,
            script("never", "echo never-ran"),
            environment={**snapshot, "CIRRUS_SNAPSHOT_SHA256": "0" * 64},
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TIMEOUT)
    assert reported_statuses(done) == {"clone": "COMPLETED", "check": "COMPLETED"}, done.log_text()
    assert "from the snapshot" in done.log_text("check")
    done = task_stopped(fake_controller, corrupt.task_id, TIMEOUT)
    assert reported_statuses(done) == {"clone": "FAILED", "never": "SKIPPED"}
    assert "is corrupt" in done.log_text("clone")
