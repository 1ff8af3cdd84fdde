"""``cirrus run``'s flags with real processes: ``--dirty``, ``-e``/``--env-file``, affected
files for ``changesInclude``, ``-o github-actions``, ``--config``, and tasks that can never run
on this machine (exit 1 with the scheduler's reason instead of waiting forever)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.test_local_run import cirrus_run

pytestmark = pytest.mark.integration


def test_dirty_runs_in_the_project_directory_itself(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / ".cirrus.yml").write_text(
        "task:\n  script:\n    - test -e ignored\n    - pwd\n    - echo made > made-by-task\n"
    )

    result = cirrus_run(tmp_path, "--dirty")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"main:main | {tmp_path}" in result.stdout
    assert (tmp_path / "made-by-task").read_text() == "made\n"


def test_without_dirty_the_task_works_in_a_copy_without_ignored_files(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("ignored/\n*.log\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "x").write_text("x")
    (tmp_path / "debug.log").write_text("x")
    (tmp_path / "kept.txt").write_text("kept\n")
    (tmp_path / ".cirrus.yml").write_text(
        "task:\n  script:\n    - test ! -e ignored\n    - test ! -e debug.log\n"
        "    - cat kept.txt\n    - echo made > made-by-task\n"
    )

    result = cirrus_run(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "main:main | kept" in result.stdout
    assert not (tmp_path / "made-by-task").exists()


def test_env_flags_and_env_file_reach_the_tasks_and_the_flags_win(tmp_path: Path) -> None:
    (tmp_path / "vars.env").write_text("# for the run\nFROM_FILE=file\nBOTH=file\nPASSED\n")
    (tmp_path / ".cirrus.yml").write_text(
        'task:\n  script: echo "$FROM_FILE $BOTH $ONLY_FLAG $PASSED"\n'
    )

    result = cirrus_run(
        tmp_path,
        "--env-file",
        "vars.env",
        "-e",
        "BOTH=flag",
        "--env",
        "ONLY_FLAG=yes",
        extra_env={"PASSED": "through"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "main:main | file flag yes through" in result.stdout


def test_affected_files_decide_changes_include(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text(
        "docs_task:\n  skip: \"!changesInclude('docs/**')\"\n  script: echo docs built\n"
        "code_task:\n  skip: \"!changesInclude('src/**')\"\n  script: echo code built\n"
    )

    result = cirrus_run(tmp_path, "--affected-files", "README.md,docs/intro.md")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "docs:main | docs built" in result.stdout
    assert "code built" not in result.stdout
    assert "code (task 2): SKIPPED" in result.stdout


def test_affected_files_git_adds_the_files_changed_since_a_revision(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    (tmp_path / ".cirrus.yml").write_text(
        "code_task:\n  skip: \"!changesInclude('src/**')\"\n  script: echo code built\n"
    )
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "first")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "new.py").write_text("x = 1\n")

    result = cirrus_run(tmp_path, "--affected-files-git", "HEAD")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "code:main | code built" in result.stdout


def test_affected_files_git_outside_a_repository_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text("task:\n  script: true\n")

    result = cirrus_run(tmp_path, "--affected-files-git", "HEAD")

    assert result.returncode == 2
    assert result.stderr.startswith("cirrus: --affected-files-git needs a git repository")


def test_github_actions_output_groups_each_tasks_lines_and_annotates_failures(
    tmp_path: Path,
) -> None:
    (tmp_path / ".cirrus.yml").write_text(
        "good_task:\n  script: echo fine\nbad_task:\n  depends_on: good\n  script: exit 3\n"
    )

    result = cirrus_run(tmp_path, "-o", "github-actions")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("::group::good")
    assert lines[start + 1 : lines.index("::endgroup::", start)].count("good:main | fine") == 1
    assert "::group::bad" in lines
    assert '::error title=bad::command "main" failed' in lines
    assert "\x1b[" not in result.stdout


def test_config_reads_another_file_and_a_file_as_task_is_told_to_use_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "other.yml").write_text("task:\n  script: echo from other\n")

    result = cirrus_run(tmp_path, "--config", "other.yml")
    mistaken = cirrus_run(tmp_path, "other.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "main:main | from other" in result.stdout
    assert mistaken.returncode == 2
    assert "use `cirrus run --config other.yml`" in mistaken.stderr


def test_a_macos_task_on_linux_exits_1_with_the_reason_it_waits(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text(
        "mac_task:\n  macos_instance:\n    image: ghcr.io/cirruslabs/macos-sonoma-base:latest\n"
        "  script: echo never\n"
    )

    result = cirrus_run(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    reason = "no worker with labels arch=arm64, os=darwin"
    assert f"mac (task 1): waiting: {reason}" in result.stdout
    assert f"cirrus: mac (task 1) cannot run: {reason}" in result.stderr
    assert "never" not in result.stdout


def test_a_task_needing_a_resource_the_worker_lacks_exits_1_naming_it(tmp_path: Path) -> None:
    (tmp_path / ".cirrus.yml").write_text(
        "gpu_task:\n  persistent_worker:\n    resources: {gpu: 1}\n  script: echo never\n"
    )

    result = cirrus_run(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "gpu (task 1) cannot run: no matching worker has gpu=1 in total" in result.stderr
