"""Black-box test of caches and artifacts of container tasks (busybox: no tar, git or curl in
the image): the worker moves the files with ``podman cp`` and the bind-mounted working dir."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.fake_controller import FakeController, FakeTask, command, script
from tests.integration.test_worker_caches import archive_names, cache
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


def two_caches(*extra: dict[str, Any]) -> FakeTask:
    """A task with a cache outside the working dir (podman cp) and one inside (the mount)."""
    task = container_task(
        *cache(
            "outside",
            "/opt/cache",
            populateScripts=["mkdir -p /opt/cache/d", "echo o > /opt/cache/d/f"],
        ),
        *cache("inside", "deps", populateScripts=["mkdir -p deps", "echo i > deps/g"]),
        script("use", "cat /opt/cache/d/f deps/g"),
        *extra,
    )
    task.environment = {"CIRRUS_TASK_NAME": "container"}
    return task


def test_a_container_task_restores_caches_inside_and_outside_its_working_dir_and_uploads_artifacts(
    worker: WorkerProcess, fake_controller: FakeController, labelled_cleanup: list[str]
) -> None:
    first = two_caches()
    second = two_caches(
        script("report", "mkdir -p reports/x", "echo '<r/>' > reports/x/a.xml"),
        command("reports", {"artifactsInstruction": {"paths": ["reports/**/*.xml"]}}),
    )
    labelled_cleanup.extend([first.task_id, second.task_id])
    fake_controller.queue_task(first)
    worker.start()
    done_first = task_stopped(fake_controller, first.task_id, TASK_TIMEOUT)
    fake_controller.queue_task(second)
    done_second = task_stopped(fake_controller, second.task_id, TASK_TIMEOUT)

    assert set(reported_statuses(done_first).values()) == {"COMPLETED"}, done_first.log_text()
    outside = fake_controller.blobs.keys("caches/outside-")
    assert len(outside) == 1
    assert archive_names(fake_controller.blobs.blob(outside[0])) == ["d", "d/f"]
    assert set(reported_statuses(done_second).values()) == {"COMPLETED"}, done_second.log_text()
    assert "Cache hit for" in done_second.log_text("outside")
    assert "Cache hit for" in done_second.log_text("inside")
    assert "Populating" not in done_second.log_text()
    assert done_second.log_text("use") == "o\ni\n"
    [(_, commit)] = fake_controller.blobs.commits
    assert [f["path"] for f in commit["files"]] == ["reports/x/a.xml"]
    key = f"artifacts/{second.task_id}/reports/reports/x/a.xml"
    assert fake_controller.blobs.blob(key) == b"<r/>\n"
