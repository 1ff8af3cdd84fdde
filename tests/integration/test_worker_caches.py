"""Black-box tests of the worker's cache and artifacts instructions (``none`` isolation), against
the fake controller's five Twirp methods and its ``/blobs/`` URLs."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest
import zstandard

from tests.integration.fake_controller import FakeController, FakeTask, command, script
from tests.integration.test_worker_run import (
    WorkerProcess,
    new_task,
    reported_statuses,
    task_stopped,
)
from tests.integration.test_worker_run import worker as worker  # the fixture

pytestmark = pytest.mark.integration
TIMEOUT = 60.0


def cache(name: str, folder: str, **fields: Any) -> list[dict[str, Any]]:
    """A cache command and its upload command, as the configuration parser emits them."""
    return [
        command(name, {"cacheInstruction": {"folders": [folder], **fields}}),
        command(f"Upload '{name}' cache", {"uploadCacheInstruction": {"cacheName": name}}),
    ]


def run(controller: FakeController, worker: WorkerProcess, task: FakeTask) -> FakeTask:
    """Queue ``task``, start the worker if needed, wait for the task's end."""
    controller.queue_task(task)
    if not worker.running():
        worker.start()
    return task_stopped(controller, task.task_id, TIMEOUT)


def archive_names(data: bytes) -> list[str]:
    """The member names of a tar.zst archive."""
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return sorted(tar.getnames())


def cache_task(*extra: dict[str, Any], **fields: Any) -> FakeTask:
    task = new_task(
        *cache("pip", "deps", populateScripts=["mkdir -p deps", "echo built > deps/lib.txt"]),
        script("use", "cat deps/lib.txt"),
        *extra,
    )
    task.environment = {"CIRRUS_TASK_NAME": "main"}
    if fields:
        task.commands[0]["cacheInstruction"].update(fields)
    return task


def test_a_miss_populates_and_uploads_and_the_next_task_hits_without_populating(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    first = run(fake_controller, worker, cache_task())
    second = run(fake_controller, worker, cache_task())

    assert reported_statuses(first)["pip"] == "COMPLETED", first.log_text()
    assert "Populating..." in first.log_text("pip")
    keys = fake_controller.blobs.keys("caches/pip-")
    assert len(keys) == 1, keys
    assert archive_names(fake_controller.blobs.blob(keys[0])) == ["lib.txt"]
    assert reported_statuses(second) == {
        "pip": "COMPLETED",
        "Upload 'pip' cache": "COMPLETED",
        "use": "COMPLETED",
    }
    assert "Cache hit for" in second.log_text("pip")
    assert "Populating" not in second.log_text("pip")
    assert second.log_text("use") == "built\n"
    assert "Skipping change detection for pip cache!" in second.log_text("Upload 'pip' cache")
    assert fake_controller.blobs.uploads == keys
    assert fake_controller.blobs.violations == []


def test_a_changed_fingerprint_misses_and_an_unchanged_folder_is_not_uploaded_again(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    run(fake_controller, worker, cache_task(fingerprintScripts=["echo v1"]))
    changed = run(fake_controller, worker, cache_task(fingerprintScripts=["echo v2"]))
    unchanged = run(
        fake_controller,
        worker,
        cache_task(fingerprintScripts=["echo v2"], reuploadOnChanges=True),
    )

    assert "Populating..." in changed.log_text("pip")
    assert "v2" in changed.log_text("pip")  # the fingerprint script's output is logged
    assert len(fake_controller.blobs.keys("caches/pip-")) == 2
    assert "Cache hit for" in unchanged.log_text("pip")
    assert "Cache pip hasn't changed! Skipping uploading..." in unchanged.log_text(
        "Upload 'pip' cache"
    )
    assert len(fake_controller.blobs.uploads) == 2


def test_a_fingerprint_key_is_the_key_and_an_empty_folder_is_not_uploaded(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = new_task(*cache("gradle", "nothing-here", fingerprintKey="gradle-v7"))
    done = run(fake_controller, worker, task)

    assert reported_statuses(done)["Upload 'gradle' cache"] == "COMPLETED"
    assert "Cache miss for gradle-v7! No script to populate with." in done.log_text("gradle")
    assert "are empty! Skipping uploading" in done.log_text("Upload 'gradle' cache")
    assert fake_controller.blobs.uploads == []


def test_artifacts_of_a_glob_are_uploaded_and_committed_and_a_missing_path_is_a_warning(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = new_task(
        script("build", "mkdir -p out/a/b", "echo one > out/a/x.xml", "echo two > out/a/b/y.xml"),
        script("fail", "exit 1"),
        command(
            "junit",
            {"artifactsInstruction": {"paths": ["out/**/*.xml"], "format": "junit"}},
            behaviour="ALWAYS",
        ),
        command("logs", {"artifactsInstruction": {"paths": ["missing/*.log"]}}, "ALWAYS"),
    )
    done = run(fake_controller, worker, task)

    statuses = reported_statuses(done)
    assert statuses["junit"] == "COMPLETED", done.log_text()
    assert statuses["logs"] == "COMPLETED", done.log_text("logs")
    assert "Warning: no file matches 'missing/*.log'" in done.log_text("logs")
    commits = fake_controller.blobs.commits
    assert [body["name"] for _, body in commits] == ["junit"]
    files = commits[0][1]["files"]
    assert [(f["path"], str(f["sizeInBytes"])) for f in files] == [
        ("out/a/b/y.xml", "4"),
        ("out/a/x.xml", "4"),
    ]
    assert commits[0][1]["format"] == "junit"
    blob = fake_controller.blobs.blob(f"artifacts/{task.task_id}/junit/out/a/x.xml")
    assert blob == b"one\n"
    assert fake_controller.blobs.violations == []


def test_an_artifact_path_outside_the_working_directory_fails_the_command(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    task = new_task(command("etc", {"artifactsInstruction": {"paths": ["/etc/hostname"]}}))
    done = run(fake_controller, worker, task)

    assert reported_statuses(done)["etc"] == "FAILED"
    assert "path is outside of CIRRUS_WORKING_DIR" in done.log_text("etc")


def test_an_optimistic_restore_takes_the_latest_cache_and_uploads_the_new_key(
    worker: WorkerProcess, fake_controller: FakeController
) -> None:
    run(fake_controller, worker, cache_task(fingerprintScripts=["echo v1"]))
    done = run(
        fake_controller,
        worker,
        cache_task(fingerprintScripts=["echo v2"], optimisticallyRestoreOnMiss=True),
    )

    assert "Found cache entry pip-" in done.log_text("pip")
    assert "Populating" not in done.log_text("pip")
    assert done.log_text("use") == "built\n"
    assert len(fake_controller.blobs.uploads) == 2
