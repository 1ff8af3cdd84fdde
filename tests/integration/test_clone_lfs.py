"""``CIRRUS_CLONE_LFS`` against a real repository whose file is tracked by Git LFS.

The repository is served by ``git daemon``; its LFS objects live in the bare repository itself
(``git lfs push`` to a local path stores them under ``lfs/objects``) and ``.lfsconfig`` points
``lfs.url`` at it as a ``file://`` URL, which git-lfs serves with its standalone file transfer:
no LFS server and no network beyond 127.0.0.1. git-lfs comes from ``scripts/setup-ops-tools.sh``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.fake_controller import CLONE, FakeController, script
from tests.integration.git_servers import Repo, git, git_daemon
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
CONTENT = "the real content, kept in LFS\n"
POINTER_HEAD = "version https://git-lfs.github.com/spec/v1"
SETUP_HINT = "run scripts/setup-ops-tools.sh (as root) first"


def require_git_lfs() -> None:
    """Fail (never skip) when git-lfs is missing: the test command installs it."""
    if shutil.which("git-lfs") is None:
        pytest.fail(f"git-lfs is not installed: {SETUP_HINT}")


def lfs_repository(root: Path) -> tuple[Repo, str]:
    """A bare repository ``<root>/lfs.git`` with ``data.bin`` in LFS; its commit's SHA."""
    require_git_lfs()
    repo = Repo(root, "lfs")
    # Local hooks and filters: the commit must not depend on the machine's git configuration.
    git(repo.work, "lfs", "install", "--local")
    git(repo.work, "lfs", "track", "*.bin")
    git(repo.work, "config", "-f", ".lfsconfig", "lfs.url", (root / "lfs.git").as_uri())
    commit = repo.commit({"data.bin": CONTENT, "plain.txt": "plain\n"}, "LFS file")
    # The pre-push hook stored the object in the bare repository; the test relies on it.
    assert list((root / "lfs.git" / "lfs" / "objects").rglob("*")), "no LFS object was pushed"
    return repo, commit


def test_with_clone_lfs_the_task_sees_the_real_content_and_without_it_the_pointer(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    _, commit = lfs_repository(tmp_path / "srv")
    with git_daemon(tmp_path / "srv") as base:
        source = {
            "CIRRUS_REPO_CLONE_URL": f"{base}/lfs.git",
            "CIRRUS_BRANCH": "main",
            "CIRRUS_CHANGE_IN_REPO": commit,
        }
        check = script("check", "cat data.bin", "git status --porcelain", "echo status-done")
        with_lfs = fake_controller.queue_task(
            new_task(CLONE, check, environment={**source, "CIRRUS_CLONE_LFS": "true"})
        )
        without = fake_controller.queue_task(new_task(CLONE, check, environment=source))
        worker.start()
        fetched = task_stopped(fake_controller, with_lfs.task_id, TIMEOUT)
        pointer = task_stopped(fake_controller, without.task_id, TIMEOUT)

    assert reported_statuses(fetched) == {"clone": "COMPLETED", "check": "COMPLETED"}, (
        fetched.log_text()
    )
    assert "Fetching LFS objects..." in fetched.log_text("clone")
    # The real content, and a clean work tree: git sees no change against the pointer.
    assert fetched.log_text("check").startswith(f"{CONTENT}status-done")

    assert reported_statuses(pointer) == {"clone": "COMPLETED", "check": "COMPLETED"}, (
        pointer.log_text()
    )
    assert "Fetching LFS objects..." not in pointer.log_text("clone")
    check_log = pointer.log_text("check")
    assert check_log.startswith(POINTER_HEAD), check_log
    assert CONTENT not in check_log


def test_clone_lfs_without_git_lfs_on_the_worker_host_fails_the_clone_with_a_clear_message(
    worker: WorkerProcess,
    fake_controller: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, commit = lfs_repository(tmp_path / "srv")
    # A PATH with git but without git-lfs (both live in /usr/bin, so a directory of its own).
    bare_bin = tmp_path / "bin-without-git-lfs"
    bare_bin.mkdir()
    real_git = shutil.which("git")
    assert real_git is not None
    (bare_bin / "git").symlink_to(real_git)
    monkeypatch.setenv("PATH", str(bare_bin))
    with git_daemon(tmp_path / "srv") as base:
        task = fake_controller.queue_task(
            new_task(
                CLONE,
                script("never", "echo never-ran"),
                environment={
                    "CIRRUS_REPO_CLONE_URL": f"{base}/lfs.git",
                    "CIRRUS_BRANCH": "main",
                    "CIRRUS_CHANGE_IN_REPO": commit,
                    "CIRRUS_CLONE_LFS": "true",
                },
            )
        )
        worker.start()
        done = task_stopped(fake_controller, task.task_id, TIMEOUT)

    assert reported_statuses(done) == {"clone": "FAILED", "never": "SKIPPED"}, done.log_text()
    assert "CIRRUS_CLONE_LFS is true, but git-lfs is not installed on the worker host" in (
        done.log_text("clone")
    )
