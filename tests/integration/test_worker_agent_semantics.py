"""Black-box tests of how ``cirrus worker run`` runs commands on the host, as the Cirrus agent did.

Environment expansion against the worker's own environment, ``CIRRUS_SHELL`` (a shell, or
``direct``), ``CIRRUS_WORKING_DIR``, the ``$CIRRUS_ENV`` file, and the ``clone`` instruction
(without a source, and from a real local Git repository).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.fake_controller import CLONE, FakeController, script
from tests.integration.git_servers import git
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


def test_env_values_are_expanded_and_cirrus_env_and_working_dir_apply_on_the_host(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    worker_tmp = worker.tmp_path / "tmp"  # the worker's TMPDIR
    task = fake_controller.queue_task(
        new_task(
            CLONE,
            script(
                "tool",
                'mkdir -p "$TMPDIR/mybin"',
                "printf '#!/bin/sh\\necho tool-ran\\n' >\"$TMPDIR/mybin/hello-tool\"",
                'chmod +x "$TMPDIR/mybin/hello-tool"',
            ),
            script(
                "use",
                "hello-tool",
                'echo "path=$PATH"',
                'echo "greeting=$GREETING self=$SELF gone=[$GONE]"',
                'echo "cwd=$(pwd) wd=$CIRRUS_WORKING_DIR"',
            ),
            script(
                "write-env",
                'echo "FROM_ENV=set by a command" >>"$CIRRUS_ENV"',
                "echo 'LATER=$FROM_ENV+$WHO' >>\"$CIRRUS_ENV\"",
            ),
            script("read-env", 'echo "from=$FROM_ENV later=$LATER"'),
            script("bad-env", "echo 'no equals sign' >>\"$CIRRUS_ENV\"", "echo LATER=lost"),
            script("after-bad", 'echo "later=$LATER"'),
            environment={
                "PATH": "$TMPDIR/mybin:$PATH",
                "GREETING": "hello ${WHO}",
                "WHO": "world",
                "SELF": "$SELF-x",
                "GONE": "$NOT_DEFINED_ANYWHERE",
                "CIRRUS_WORKING_DIR": "$TMPDIR/custom-wd/sub",
            },
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TIMEOUT)
    assert done.failures == []
    assert set(reported_statuses(done).values()) == {"COMPLETED"}, done.log_text()
    assert "no source to clone" in done.log_text("clone")
    use = done.log_text("use")
    assert "tool-ran" in use
    assert f"path={worker_tmp}/mybin:/" in use
    assert "greeting=hello world self=$SELF-x gone=[]" in use
    wd = worker_tmp / "custom-wd" / "sub"
    assert f"cwd={wd} wd={wd}" in use
    assert "from=set by a command later=set by a command+world" in done.log_text("read-env")
    assert "KEY=VALUE format" in done.log_text("bad-env")
    assert "later=set by a command+world" in done.log_text("after-bad")


def test_cirrus_shell_picks_bash_or_runs_the_first_line_directly(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    bash = fake_controller.queue_task(
        new_task(
            script(
                "arrays",
                "words=(a b c)",
                'echo "second=${words[1]} shell=$SHELL"',
                '[[ -n "$BASH_VERSION" ]] && echo is-bash',
            ),
            script("pipefail", "false | true", "echo not-reached"),
            environment={"CIRRUS_SHELL": "bash"},
        )
    )
    direct = fake_controller.queue_task(
        new_task(
            script("direct", "printf '%s|' \"$WHO\" 'a b' ;echo $HOME", "echo ignored-line"),
            environment={"CIRRUS_SHELL": "direct", "WHO": "world"},
        )
    )
    worker.start()

    done = task_stopped(fake_controller, bash.task_id, TIMEOUT)
    assert reported_statuses(done) == {"arrays": "COMPLETED", "pipefail": "FAILED"}
    assert "second=b shell=bash" in done.log_text("arrays")
    assert "is-bash" in done.log_text("arrays")
    assert "not-reached" not in done.log_text("pipefail")

    done = task_stopped(fake_controller, direct.task_id, TIMEOUT)
    assert reported_statuses(done) == {"direct": "COMPLETED"}
    output = done.log_text("direct")
    # Expanded by the worker ($HOME from its own environment), split into words, no shell.
    assert output.startswith(f"world|a b|;echo|{os.environ.get('HOME', '')}|")
    assert "ignored-line" not in output


def test_the_clone_instruction_checks_out_the_change_of_a_local_repository(
    worker: WorkerProcess, fake_controller: FakeController, tmp_path: Path
) -> None:
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch", "main")
    (repo / "file.txt").write_text("first\n")
    git(repo, "add", "file.txt")
    git(repo, "commit", "--quiet", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "file.txt").write_text("second\n")
    git(repo, "commit", "--quiet", "-am", "second")
    task = fake_controller.queue_task(
        new_task(
            CLONE,
            script("check", "git rev-parse HEAD", "cat file.txt"),
            environment={
                "CIRRUS_REPO_CLONE_URL": str(repo),
                "CIRRUS_BRANCH": "main",
                "CIRRUS_CHANGE_IN_REPO": first,
            },
        )
    )
    missing = fake_controller.queue_task(
        new_task(
            CLONE,
            script("never", "echo never-ran"),
            environment={"CIRRUS_REPO_CLONE_URL": str(tmp_path / "no-such-repo")},
        )
    )
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TIMEOUT)
    assert reported_statuses(done) == {"clone": "COMPLETED", "check": "COMPLETED"}, done.log_text()
    assert "Hard resetting to" in done.log_text("clone")
    assert f"{first}\nfirst\n" in done.log_text("check")

    done = task_stopped(fake_controller, missing.task_id, TIMEOUT)
    assert reported_statuses(done) == {"clone": "FAILED", "never": "SKIPPED"}
    assert "no-such-repo" in done.log_text("clone")
