"""``cirrus build submit`` from a git checkout with an uncommitted change, against a real
controller process and a real worker process: the task runs in the snapshot and sees the change
and the commit's ``CIRRUS_*`` variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.git_repos import commit_all, git, isolate_git, new_repository, write
from tests.integration.test_controller_cli import Controller, cli
from tests.integration.test_controller_cli import stack as stack  # a stack of this module's own

pytestmark = pytest.mark.integration

YAML = """\
show_task:
  script:
    - cat README.md
    - echo "branch=$CIRRUS_BRANCH commit=$CIRRUS_CHANGE_IN_REPO repo=$CIRRUS_REPO_FULL_NAME"
    - test ! -e debug.log
"""


def test_the_task_of_a_submitted_checkout_sees_its_uncommitted_change(
    stack: tuple[Controller, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller, _ = stack
    isolate_git(tmp_path, monkeypatch)
    repo = new_repository(tmp_path / "widget")
    git(repo, "remote", "add", "origin", "https://forge.example/acme/widget.git")
    write(repo / ".cirrus.yml", YAML)
    write(repo / ".gitignore", "*.log\n")
    commit = commit_all(repo, "Show the readme")
    write(repo / "README.md", "uncommitted change\n")
    write(repo / "debug.log", "ignored\n")

    result = cli(
        tmp_path,
        "build",
        "submit",
        str(repo / ".cirrus.yml"),
        "--controller",
        controller.url,
        "--follow",
        token=controller.admin_token,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "show:main | uncommitted change" in result.stdout.splitlines()
    assert f"show:main | branch=main commit={commit} repo=acme/widget" in result.stdout.splitlines()
