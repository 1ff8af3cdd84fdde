"""Black-box tests of how ``cirrus worker run`` runs commands in a podman container, as the
Cirrus agent did inside its container: environment expansion against the container's own
environment (``HOME`` of the image's user, the image's ``PATH``), ``CIRRUS_WORKING_DIR``,
``$CIRRUS_ENV``, ``CIRRUS_SHELL`` (resolved inside the container) and ``direct``, and ``clone``
without a source.
"""

from __future__ import annotations

import pytest

from tests.integration.container_image import containers_labelled
from tests.integration.fake_controller import FakeController, command, script
from tests.integration.test_worker_container import (
    TASK_LABEL,
    TASK_TIMEOUT,
    container_task,
)
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

# The busybox image's PATH (its Config.Env); HOME is set by the runtime for root, not the image.
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_env_expansion_working_dir_and_cirrus_env_use_the_containers_environment(
    worker: WorkerProcess, fake_controller: FakeController, labelled_cleanup: list[str]
) -> None:
    task = container_task(
        command("clone", {"cloneInstruction": {}}),
        script(
            "tool",
            'mkdir -p "$HOME/mybin"',
            "printf '#!/bin/sh\\necho tool-ran\\n' >\"$HOME/mybin/hello-tool\"",
            'chmod +x "$HOME/mybin/hello-tool"',
        ),
        script(
            "use",
            "hello-tool",
            'echo "path=$PATH greeting=$GREETING"',
            'echo "cwd=$(pwd) wd=$CIRRUS_WORKING_DIR"',
        ),
        script("write-env", 'echo "FROM_ENV=$(id -un) wrote this" >>"$CIRRUS_ENV"'),
        script("read-env", 'echo "from=$FROM_ENV"'),
    )
    task.environment = {
        "PATH": "$HOME/mybin:$PATH",
        "GREETING": "hello ${WHO}",
        "WHO": "world",
        "CIRRUS_WORKING_DIR": "/tmp/elsewhere/sub",
    }
    fake_controller.queue_task(task)
    labelled_cleanup.append(task.task_id)
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert done.failures == []
    assert set(reported_statuses(done).values()) == {"COMPLETED"}, done.log_text()
    assert "no source to clone" in done.log_text("clone")
    use = done.log_text("use")
    assert "tool-ran" in use
    assert f"path=/root/mybin:{IMAGE_PATH} greeting=hello world" in use
    assert "cwd=/tmp/elsewhere/sub wd=/tmp/elsewhere/sub" in use
    assert "from=root wrote this" in done.log_text("read-env")
    assert containers_labelled(f"{TASK_LABEL}={task.task_id}") == []


def test_cirrus_shell_runs_inside_the_container_and_cirrus_env_can_switch_to_direct(
    worker: WorkerProcess, fake_controller: FakeController, labelled_cleanup: list[str]
) -> None:
    task = container_task(
        script("traced", "echo traced-line"),
        script("to-direct", 'echo "CIRRUS_SHELL=direct" >>"$CIRRUS_ENV"'),
        script("direct", "echo \"$HOME\" 'a  b' ;x", "echo ignored-line"),
        script("to-bash", "sh -c 'echo CIRRUS_SHELL=bash >>$CIRRUS_ENV'"),
        script("no-bash", "echo never"),
    )
    task.environment = {"CIRRUS_SHELL": "sh -x"}
    fake_controller.queue_task(task)
    labelled_cleanup.append(task.task_id)
    worker.start()

    done = task_stopped(fake_controller, task.task_id, TASK_TIMEOUT)
    assert reported_statuses(done) == {
        "traced": "COMPLETED",
        "to-direct": "COMPLETED",
        "direct": "COMPLETED",
        "to-bash": "COMPLETED",
        "no-bash": "FAILED",
    }, done.log_text()
    assert "+ echo traced-line" in done.log_text("traced")
    assert "/root a  b ;x" in done.log_text("direct")
    assert "ignored-line" not in done.log_text()
    # The busybox image has no bash: the shell is looked up in the container, not the host.
    assert "bash" in done.log_text("no-bash")
    assert "never" not in done.log_text("no-bash")
