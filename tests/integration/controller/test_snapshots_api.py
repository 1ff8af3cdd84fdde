"""``/api/v1/snapshots`` on a real controller: upload, download, and who may download."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.integration.controller.conftest import ADMIN_TOKEN, RunningController, WorkerClient
from tests.integration.test_controller_cli import cli, start_controller

ONE_TASK = "task:\n  name: t\n  script: echo hi\n"


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A ``.tar.gz`` holding ``files`` (path -> content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def upload(
    controller: RunningController, body: bytes, token: str = ADMIN_TOKEN
) -> httpx.Response:
    """POST a snapshot body."""
    return await controller.http.post(
        "/api/v1/snapshots",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
    )


async def snapshot_build(controller: RunningController, snapshot: str) -> dict[str, object]:
    """Submit a one-task build whose source is ``snapshot``."""
    response = await controller.api(
        "POST", "/api/v1/builds", {"config": ONE_TASK, "source": {"snapshot": snapshot}}
    )
    assert response.status_code == 201, response.text
    build: dict[str, object] = response.json()
    return build


async def test_a_snapshot_uploaded_with_the_admin_token_downloads_byte_for_byte(
    controller: RunningController,
) -> None:
    body = tar_gz({"src/app.py": b"print(1)\n", "README": b"x" * 3_000_000})
    response = await upload(controller, body)
    assert response.status_code == 201, response.text
    info = response.json()
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert info["size"] == len(body)
    download = await controller.api("GET", f"/api/v1/snapshots/{info['id']}")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/gzip"
    assert download.content == body


async def test_a_body_that_is_not_a_gzipped_tar_is_refused(controller: RunningController) -> None:
    not_gzip = await upload(controller, b"just text")
    not_tar = await upload(controller, gzip.compress(b"not a tar archive" * 100))
    cut_short = await upload(controller, tar_gz({"a": b"y" * 100_000})[:-20])
    for response in (not_gzip, not_tar, cut_short):
        assert response.status_code == 400
        assert "not a gzip'd tar archive" in response.json()["error"]


async def test_a_member_leading_outside_the_tree_is_refused(controller: RunningController) -> None:
    response = await upload(controller, tar_gz({"../escape.txt": b"x"}))
    assert response.status_code == 400
    assert "'../escape.txt' is refused" in response.json()["error"]


async def test_snapshots_need_a_token_and_unknown_ones_are_404(
    controller: RunningController,
) -> None:
    assert (await upload(controller, tar_gz({"a": b"1"}), token="wrong")).status_code == 401
    assert (await controller.api("GET", "/api/v1/snapshots/abc", token=None)).status_code == 401
    missing = await controller.api("GET", "/api/v1/snapshots/abc")
    assert missing.status_code == 404


async def _running_task(worker: WorkerClient) -> dict[str, str]:
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    return {"taskId": task["taskId"], "clientSecret": task["clientSecret"]}


async def test_a_worker_downloads_only_the_snapshot_of_its_running_task(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    mine = (await upload(controller, tar_gz({"mine": b"1"}))).json()
    other = (await upload(controller, tar_gz({"other": b"2"}))).json()
    await snapshot_build(controller, mine["id"])
    task = await _running_task(worker)
    headers = worker.task_headers(task)

    allowed = await controller.http.get(f"/api/v1/snapshots/{mine['id']}", headers=headers)
    refused = await controller.http.get(f"/api/v1/snapshots/{other['id']}", headers=headers)
    wrong_secret = await controller.http.get(
        f"/api/v1/snapshots/{mine['id']}",
        headers={**headers, "org.cirruslabs.client-secret": "guess"},
    )
    no_session = await controller.http.get(
        f"/api/v1/snapshots/{mine['id']}", headers={**headers, "session-token": "guess"}
    )
    assert allowed.status_code == 200
    assert hashlib.sha256(allowed.content).hexdigest() == mine["sha256"]
    assert refused.status_code == 403
    assert "is not a build of snapshot" in refused.json()["error"]
    assert wrong_secret.status_code == 403
    assert no_session.status_code == 401

    await worker.stopped(task)
    after_stop = await controller.http.get(f"/api/v1/snapshots/{mine['id']}", headers=headers)
    assert after_stop.status_code == 403


async def test_the_task_headers_of_another_builds_task_are_refused(
    controller: RunningController,
) -> None:
    owner, stranger = controller.worker("owner"), controller.worker("stranger")
    await owner.register()
    await stranger.register()
    snapshot = (await upload(controller, tar_gz({"a": b"1"}))).json()
    await snapshot_build(controller, snapshot["id"])
    await _running_task(owner)
    await controller.submit(ONE_TASK)  # a build without a snapshot
    foreign = await _running_task(stranger)
    refused = await controller.http.get(
        f"/api/v1/snapshots/{snapshot['id']}", headers=stranger.task_headers(foreign)
    )
    assert refused.status_code == 403
    assert "is not a build of snapshot" in refused.json()["error"]


async def test_a_build_of_an_unknown_snapshot_is_refused(controller: RunningController) -> None:
    response = await controller.api(
        "POST", "/api/v1/builds", {"config": ONE_TASK, "source": {"snapshot": "nope"}}
    )
    assert response.status_code == 400
    assert "source.snapshot: no snapshot 'nope'" in response.json()["error"]


def test_an_upload_over_the_flagged_limit_is_refused_naming_it(tmp_path: Path) -> None:
    process, url = start_controller(
        tmp_path,
        tmp_path / "controller.db",
        "--admin-token",
        ADMIN_TOKEN,
        "--registration-token",
        "registration",
        "--snapshot-max-bytes",
        "1000",
    )
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        body = tar_gz({"big": random.Random(7).randbytes(4000)})  # incompressible
        assert len(body) > 1000
        with httpx.Client(base_url=url, timeout=30) as http:
            too_big = http.post("/api/v1/snapshots", content=body, headers=headers)

            def chunked() -> Iterator[bytes]:
                yield body[:500]
                yield body[500:]

            streamed = http.post("/api/v1/snapshots", content=chunked(), headers=headers)
            small = http.post("/api/v1/snapshots", content=tar_gz({"a": b"1"}), headers=headers)
    finally:
        process.terminate()
    for response in (too_big, streamed):
        assert response.status_code == 413
        assert response.json()["error"] == (
            "the snapshot is larger than the limit of 1000 bytes (snapshot-max-bytes)"
        )
    assert small.status_code == 201


def test_the_controller_file_sets_the_limit_and_a_bad_value_is_a_usage_error(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.yml"
    good.write_text(f"admin-token: {ADMIN_TOKEN}\nsnapshot-max-bytes: 1000\n")
    process, url = start_controller(tmp_path, tmp_path / "controller.db", "-f", str(good))
    try:
        body = tar_gz({"big": random.Random(7).randbytes(4000)})
        with httpx.Client(base_url=url, timeout=30) as http:
            response = http.post(
                "/api/v1/snapshots",
                content=body,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
    finally:
        process.terminate()
    assert response.status_code == 413
    assert "limit of 1000 bytes (snapshot-max-bytes)" in response.json()["error"]

    bad = tmp_path / "bad.yml"
    bad.write_text("snapshot-max-bytes: lots\n")
    result = cli(tmp_path, "controller", "run", "-f", str(bad), "--check")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cirrus: snapshot-max-bytes: must be a whole number of bytes from 1, not 'lots'"
    )
