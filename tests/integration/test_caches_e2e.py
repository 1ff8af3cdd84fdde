"""End to end: a real controller (filesystem blob store, and an S3 server: moto's server mode) and
a real worker run a task with a ``pip_cache`` and its ``populate_script`` several times. Run 1
misses and uploads, run 2 hits and skips the populate script, a changed fingerprint misses, and
a pull request build reads the base branch's cache without overwriting it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

import boto3  # type: ignore[import-untyped]  # moto brings boto3 without type stubs
import httpx
import pytest

from tests.integration.blobs.test_s3_store import CREDENTIALS
from tests.integration.blobs.test_s3_store import endpoint as endpoint  # the moto fixture
from tests.integration.test_controller_cli import (
    START_TIMEOUT,
    Process,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

BUILD_TIMEOUT = 120.0
CONFIG = """task:
  name: cached
  pip_cache:
    folder: cache-dir
    fingerprint_script: echo "$FINGERPRINT"
    reupload_on_changes: true
    populate_script:
      - mkdir -p cache-dir
      - echo populated > cache-dir/marker
      - echo run >> "$POPULATED"
  check_script:
    - cat cache-dir/marker
    - if [ -n "$CIRRUS_PR" ]; then echo pr >> cache-dir/marker; fi
"""


class Stack:
    """A controller process, a worker polling it, and an admin client of its API."""

    def __init__(self, tmp_path: Path, *controller_args: str) -> None:
        self.tmp_path = tmp_path
        self.controller, self.url = start_controller(
            tmp_path, tmp_path / "e2e.db", *controller_args
        )
        output = self.controller.stdout()
        self.admin = printed_token(output, "admin token")
        name = "cache-e2e-" + uuid.uuid4().hex[:6]
        registration = printed_token(output, "registration token")
        self.worker = Process(
            tmp_path,
            "worker",
            ["worker", "run", "--name", name, "--token", registration, "--rpc-endpoint", self.url],
        )
        wait_for(lambda: "registered with" in self.worker.stderr(), START_TIMEOUT, "a Register")
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin}"}, timeout=30
        )
        self.populated = tmp_path / "populated.txt"

    def close(self) -> None:
        """Stop the worker and the controller; both must exit cleanly."""
        self.http.close()
        try:
            assert self.worker.terminate() == 0, self.worker.stderr()
        finally:
            assert self.controller.terminate() == 0, self.controller.stderr()

    def populate_runs(self) -> int:
        """How many times a populate script ran so far."""
        return len(self.populated.read_text().splitlines()) if self.populated.exists() else 0

    def run(self, environment: Mapping[str, str]) -> str:
        """Run the task in a build with ``environment``; return the check script's log."""
        body = {
            "config": CONFIG,
            "environment": {"POPULATED": str(self.populated), **environment},
        }
        response = self.http.post("/api/v1/builds", json=body)
        assert response.status_code == 201, response.text
        build_id = response.json()["id"]

        def final() -> dict[str, object] | None:
            build: dict[str, object] = self.http.get(f"/api/v1/builds/{build_id}").json()
            return build if build["status"] in ("COMPLETED", "FAILED", "ABORTED") else None

        build = wait_for(final, BUILD_TIMEOUT, f"build {build_id} to end")
        tasks = build["tasks"]
        assert isinstance(tasks, list)
        task_id = tasks[0]["id"]
        assert build["status"] == "COMPLETED", self.worker.stderr()[-3000:]
        return self.http.get(f"/api/v1/tasks/{task_id}/logs/check").text


BASE = {"CIRRUS_REPO_FULL_NAME": "octo/app", "FINGERPRINT": "one"}
PULL_REQUEST = {**BASE, "CIRRUS_PR": "5"}


def exercise(stack: Stack) -> None:
    """The runs of the scenario, with their expectations."""
    assert "populated" in stack.run(BASE)
    assert stack.populate_runs() == 1  # run 1: a miss, populated and uploaded
    assert "populated" in stack.run(BASE)
    assert stack.populate_runs() == 1  # run 2: a hit, nothing to populate
    stack.run({**BASE, "FINGERPRINT": "two"})
    assert stack.populate_runs() == 2  # another fingerprint: a miss
    assert stack.run(PULL_REQUEST).split() == ["populated"]
    assert stack.populate_runs() == 2  # the pull request read the base cache
    # The pull request's change went to its own scope: the next run of the PR sees it...
    assert stack.run(PULL_REQUEST).split() == ["populated", "pr"]
    # ...and the base branch still has its own cache.
    assert stack.run(BASE).split() == ["populated"]
    assert stack.populate_runs() == 2


def test_caches_hit_miss_and_stay_scoped_on_the_filesystem_store(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    try:
        exercise(stack)
    finally:
        stack.close()


@pytest.fixture
def s3_controller_file(endpoint: str, tmp_path: Path) -> Path:
    """A controller file whose ``blobs:`` is a fresh bucket on the moto server."""
    bucket = "cirrus-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS).create_bucket(
        Bucket=bucket
    )
    (tmp_path / "key-id").write_text("testing\n")
    (tmp_path / "secret").write_text("testing\n")
    file = tmp_path / "controller.yml"
    file.write_text(
        "blobs:\n"
        "  kind: s3\n"
        f"  bucket: {bucket}\n"
        f"  endpoint: {endpoint}\n"
        "  region: us-east-1\n"
        f"  access-key-id-file: {tmp_path / 'key-id'}\n"
        f"  secret-access-key-file: {tmp_path / 'secret'}\n"
        "  prefix: e2e/\n"
    )
    return file


def test_caches_hit_miss_and_stay_scoped_on_the_s3_store(
    tmp_path: Path, s3_controller_file: Path
) -> None:
    stack = Stack(tmp_path, "-f", str(s3_controller_file))
    try:
        exercise(stack)
    finally:
        stack.close()
