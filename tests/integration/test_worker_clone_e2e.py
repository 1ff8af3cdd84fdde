"""End to end: ``cirrus build submit --follow`` uploads a project's snapshot to a real controller,
and a real worker's ``clone`` downloads it with its task headers: the task sees the files."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.git_repos import commit_all, isolate_git, new_repository
from tests.integration.test_controller_cli import (
    START_TIMEOUT,
    Process,
    cli,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

CONFIG = "task:\n  name: check\n  script: cat data/greeting.txt\n"


def test_a_submitted_snapshot_reaches_the_task_through_the_workers_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(tmp_path, monkeypatch)
    project = new_repository(tmp_path / "project")
    (project / ".cirrus.yml").write_text(CONFIG)
    commit_all(project, "Configure Cirrus")
    (project / "data").mkdir(parents=True)
    # Not committed: the snapshot holds the working tree.
    (project / "data" / "greeting.txt").write_text("hello from the snapshot\n")
    controller, url = start_controller(tmp_path, tmp_path / "e2e.db")
    try:
        output = controller.stdout()
        registration = printed_token(output, "registration token")
        admin = printed_token(output, "admin token")
        name = "clone-e2e-" + uuid.uuid4().hex[:6]
        worker = Process(
            tmp_path,
            "worker",
            ["worker", "run", "--name", name, "--token", registration, "--rpc-endpoint", url],
        )
        try:
            wait_for(lambda: "registered with" in worker.stderr(), START_TIMEOUT, "a Register")
            result = cli(
                tmp_path,
                "build",
                "submit",
                str(project / ".cirrus.yml"),
                "--controller",
                url,
                "--follow",
                token=admin,
            )
        finally:
            assert worker.terminate() == 0, worker.stderr()
    finally:
        assert controller.terminate() == 0, controller.stderr()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello from the snapshot" in result.stdout
