"""Issue 15: killing the worker halfway through an artifact upload leaves no committed partial
artifact, and retention collects what the upload left behind.

A real controller (SQLite, the filesystem blob store under ``<database dir>/blobs``, a short
``retention:`` orphan age and interval) and a real worker (host isolation). The task's artifact
has two files: ``a-small.txt`` is uploaded whole first (a blob no commit ever names: an orphan),
then ``b-big.bin`` (200 MB) streams into the store's ``tmp/`` when the worker gets SIGKILL.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.test_controller_cli import (
    START_TIMEOUT,
    Process,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

BIG_BYTES = 200 * 1000 * 1000
STARTED = 10 * 1024 * 1024
"""Bytes of ``b-big.bin`` in the store's ``tmp/`` that show the upload is under way."""
TIMEOUT = 120.0
CONFIG = f"""\
task:
  name: uploads
  make_script:
    - mkdir -p out
    - echo small > out/a-small.txt
    - head -c {BIG_BYTES} /dev/urandom > out/b-big.bin
  out_artifacts:
    path: out/*
"""
RETENTION = """\
retention:
  orphans-hours: 0.001    # 3.6 s
  every-minutes: 0.01     # 0.6 s
"""
ORPHANS = re.compile(r'^\w*blobs_deleted_total\{[^}]*reason="orphan"[^}]*\} (\S+)$')


def partial_uploads(blobs: Path) -> list[int]:
    """The sizes of the uploads in progress in the filesystem blob store."""
    tmp = blobs / "tmp"
    sizes = []
    for entry in tmp.iterdir() if tmp.is_dir() else ():
        try:
            sizes.append(entry.stat().st_size)
        except FileNotFoundError:  # published or removed meanwhile
            continue
    return sizes


def published(blobs: Path, task_id: str) -> list[str]:
    """The artifact blobs of a task the store publishes (index documents)."""
    root = blobs / "index" / "artifacts" / task_id
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json")) if root.exists() else []


def orphans_deleted(metrics: str) -> float:
    """The ``blobs.deleted`` counter of reason ``orphan`` in Prometheus text (0 if absent)."""
    values = [float(m.group(1)) for line in metrics.splitlines() if (m := ORPHANS.match(line))]
    return sum(values)


def test_a_worker_killed_mid_upload_commits_nothing_and_retention_collects_the_orphan(
    tmp_path: Path,
) -> None:
    config = tmp_path / "controller.yml"
    config.write_text(RETENTION)
    controller, url = start_controller(
        tmp_path, tmp_path / "controller.db", "-f", str(config), "--worker-offline-after", "11"
    )
    blobs = tmp_path / "blobs"
    output = controller.stdout()
    admin = {"Authorization": f"Bearer {printed_token(output, 'admin token')}"}
    worker = Process(
        tmp_path,
        "worker",
        [
            "worker",
            "run",
            "--name",
            "killed-" + uuid.uuid4().hex[:6],
            "--token",
            printed_token(output, "registration token"),
            "--rpc-endpoint",
            url,
        ],
    )
    try:
        wait_for(lambda: "registered with" in worker.stderr(), START_TIMEOUT, "a Register")
        with httpx.Client(base_url=url, headers=admin, timeout=30) as api:
            submitted = api.post("/api/v1/builds", json={"config": CONFIG})
            assert submitted.status_code == 201, submitted.text
            task_id = str(submitted.json()["tasks"][0]["id"])
            wait_for(
                lambda: any(size >= STARTED for size in partial_uploads(blobs)),
                TIMEOUT,
                "the big file's upload to start",
            )
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=30)
            # The small file was uploaded whole, the big one never was; nothing was committed.
            assert published(blobs, task_id) == ["out/out/a-small.txt.json"]  # <name>/<path>
            listed = api.get(f"/api/v1/tasks/{task_id}/artifacts")
            assert listed.status_code == 200, listed.text
            assert listed.json() == {"artifacts": [], "tests": None}
            # The controller drops the upload whose client vanished (or retention does).
            wait_for(lambda: partial_uploads(blobs) == [], TIMEOUT, "the partial upload to go")
            # The task fails once its worker counts as lost; then its orphan may go.
            wait_for(
                lambda: api.get(f"/api/v1/tasks/{task_id}").json()["status"] == "FAILED",
                TIMEOUT,
                "the lost worker's task to fail",
            )
            wait_for(lambda: published(blobs, task_id) == [], TIMEOUT, "retention of the orphan")
            assert api.get(f"/api/v1/tasks/{task_id}/artifacts").json()["artifacts"] == []
            wait_for(
                lambda: orphans_deleted(api.get("/metrics").text) >= 1,
                TIMEOUT,
                "the orphan counted in blobs.deleted",
            )
            log = controller.stderr()
            assert "retention deleted blob artifacts/" in log
            assert "Traceback" not in log
    finally:
        worker.kill_session()
        assert controller.terminate() == 0, controller.stderr()
