"""Black-box test of a Tart task's artifacts and cache (SFTP over the task's SSH session), on the
simulated ``tart`` whose VMs are real sshd's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.fake_controller import FakeController, FakeTask, command, script
from tests.integration.test_worker_caches import cache
from tests.integration.test_worker_run import reported_statuses, task_stopped
from tests.integration.test_worker_vm import (
    TASK_TIMEOUT,
    VmWorkerProcess,
    vm_isolation,
    vm_task,
)
from tests.integration.test_worker_vm import vm_worker as vm_worker  # the fixture
from tests.integration.vm.conftest import Simulator
from tests.integration.vm.conftest import simulator as simulator

pytestmark = pytest.mark.integration


def test_a_tart_task_uploads_its_artifacts_and_restores_its_cache_over_sftp(
    vm_worker: VmWorkerProcess, fake_controller: FakeController, simulator: Simulator
) -> None:
    def task_with(*extra: dict[str, Any]) -> FakeTask:
        task = vm_task(
            vm_isolation(simulator, "tart"),
            *cache("deps", "deps", populateScripts=["mkdir -p deps", "echo built > deps/d.txt"]),
            *extra,
        )
        task.environment = {"CIRRUS_TASK_NAME": "vm"}
        return fake_controller.queue_task(task)

    first = task_with(
        script("build", "mkdir -p out/sub", "echo one > out/a.log", "echo two > out/sub/b.log"),
        command("logs", {"artifactsInstruction": {"paths": ["out/**/*.log"]}}),
    )
    vm_worker.start()
    done = task_stopped(fake_controller, first.task_id, TASK_TIMEOUT)
    second = task_with(script("use", "cat deps/d.txt"))  # after the first one's upload
    done_second = task_stopped(fake_controller, second.task_id, TASK_TIMEOUT)

    assert set(reported_statuses(done).values()) == {"COMPLETED"}, done.log_text()
    [(_, commit)] = fake_controller.blobs.commits
    assert [f["path"] for f in commit["files"]] == ["out/a.log", "out/sub/b.log"]
    task_id = done.task_id
    assert fake_controller.blobs.blob(f"artifacts/{task_id}/logs/out/sub/b.log") == b"two\n"
    assert "Cache hit for" in done_second.log_text("deps")
    assert done_second.log_text("use") == "built\n"
    vm_worker.stop_and_check_clean()
