"""Caches and artifacts on a real controller with the filesystem blob store: the five Twirp
calls as a worker makes them (raw JSON), the bytes through the signed ``/blobs`` URLs, the API,
``cirrus task artifacts`` and ``cirrus build status``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from adapters.blobs.filesystem import FilesystemBlobStore
from adapters.blobs.signing import BlobSigner
from domain.artifacts import CacheLimits
from tests.integration.child_environment import child_environment
from tests.integration.cirrus_command import run_cirrus
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    CI,
    RunningController,
    ShiftableClock,
    WorkerClient,
    serve_on_sqlite,
)

pytestmark = pytest.mark.integration

ONE_TASK = "task:\n  name: t\n  script: echo hi\n"
REPOSITORY = {"CIRRUS_REPO_FULL_NAME": "Octo/App"}
PULL_REQUEST = {"CIRRUS_REPO_FULL_NAME": "octo/app", "CIRRUS_PR": "7"}

Json = dict[str, Any]


async def start(
    stack: AsyncExitStack, directory: Path, limits: CacheLimits | None = None
) -> RunningController:
    """A controller on SQLite and a filesystem blob store, both in ``directory``."""
    clock = ShiftableClock()
    blobs = FilesystemBlobStore(directory / "blobs", BlobSigner.generate(), clock.now)
    controller, _store = await serve_on_sqlite(
        stack, directory, 1, clock=clock, blobs=blobs, cache_limits=limits
    )
    return controller


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[RunningController]:
    """A controller with the default cache limits."""
    async with AsyncExitStack() as stack:
        yield await start(stack, tmp_path)


class Task:
    """A task handed to a worker, and the calls it makes."""

    def __init__(self, worker: WorkerClient, task: Json) -> None:
        self.worker = worker
        self.task = task
        self.id: str = task["taskId"]

    async def call(self, method: str, body: Json) -> Any:
        """Make a task-scoped call; return the raw answer."""
        return await self.worker.call(CI, method, body, self.worker.task_headers(self.task))

    async def ok(self, method: str, body: Json) -> Json:
        """A call that must succeed."""
        response = await self.call(method, body)
        assert response.status_code == 200, response.text
        answer: Json = response.json()
        return answer

    async def upload_cache(self, key: str, body: bytes) -> None:
        """Get an upload URL for ``key`` and PUT ``body`` to it."""
        answer = await self.ok("GenerateCacheUploadURL", {"cacheKey": key})
        put = await self.worker.http.put(
            answer["url"], content=body, headers=answer.get("extraHeaders", {})
        )
        assert put.status_code == 201, put.text

    async def download_cache(self, key: str) -> bytes:
        """Download ``key`` through its URL."""
        [url] = (await self.ok("GenerateCacheDownloadURLs", {"cacheKey": key}))["urls"]
        response = await self.worker.http.get(url)
        assert response.status_code == 200, response.text
        return response.content

    async def cache_info(self, key: str = "", prefixes: tuple[str, ...] = ()) -> Json | None:
        """``CacheInfo``'s ``info``, or None when the controller says ``not_found``."""
        body = {"cacheKey": key, "cacheKeyPrefixes": list(prefixes)}
        response = await self.call("CacheInfo", body)
        if response.status_code == 404:
            assert response.json()["code"] == "not_found"
            return None
        assert response.status_code == 200, response.text
        info: Json = response.json()["info"]
        return info

    async def upload_artifact(
        self, name: str, files: Mapping[str, bytes], type_: str = "", format_: str = ""
    ) -> Any:
        """Upload every file, then commit; return the commit's raw answer."""
        listed = [{"path": p, "sizeInBytes": str(len(b))} for p, b in files.items()]
        urls = (await self.ok("GenerateArtifactUploadURLs", {"name": name, "files": listed}))[
            "urls"
        ]
        for url, body in zip(urls, files.values(), strict=True):
            put = await self.worker.http.put(
                url["url"], content=body, headers=url.get("headers", {})
            )
            assert put.status_code == 201, put.text
        commit = {"name": name, "type": type_, "format": format_, "files": listed}
        return await self.call("CommitUploadedArtifacts", commit)


async def running_task(
    controller: RunningController, environment: Mapping[str, str], worker_name: str
) -> Task:
    """Submit a one-task build with ``environment``; a new worker takes and starts its task."""
    await controller.submit(ONE_TASK, environment)
    worker = controller.worker(worker_name)
    await worker.register()
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    return Task(worker, task)


async def test_an_uploaded_cache_is_found_by_key_and_prefix_and_downloads_whole(
    controller: RunningController,
) -> None:
    task = await running_task(controller, REPOSITORY, "w1")
    assert await task.cache_info("pip-abc") is None
    missing = await task.call("GenerateCacheDownloadURLs", {"cacheKey": "pip-abc"})
    assert missing.status_code == 404
    await task.upload_cache("pip-abc", b"archive")
    info = await task.cache_info("pip-abc")
    assert info is not None
    assert (info["key"], int(info["sizeInBytes"]), info["createdByTaskId"]) == (
        "pip-abc",
        7,
        task.id,
    )
    by_prefix = await task.cache_info("pip-zzz", ("npm-", "pip-"))
    assert by_prefix is not None
    assert by_prefix["key"] == "pip-abc"
    assert await task.download_cache("pip-abc") == b"archive"


async def test_a_pull_request_reads_the_base_cache_and_never_overwrites_it(
    controller: RunningController,
) -> None:
    base = await running_task(controller, REPOSITORY, "w1")
    await base.upload_cache("pip-x", b"base")
    pull = await running_task(controller, PULL_REQUEST, "w2")
    assert await pull.cache_info("pip-x") is not None
    assert await pull.download_cache("pip-x") == b"base"
    await pull.upload_cache("pip-x", b"pull request")
    assert await pull.download_cache("pip-x") == b"pull request"
    later = await running_task(controller, REPOSITORY, "w3")
    assert await later.download_cache("pip-x") == b"base"
    other_pull = await running_task(controller, {**PULL_REQUEST, "CIRRUS_PR": "8"}, "w4")
    assert await other_pull.download_cache("pip-x") == b"base"


async def test_the_least_recently_used_cache_goes_when_the_repository_is_over_its_limit(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        controller = await start(stack, tmp_path, CacheLimits(150, 250))
        task = await running_task(controller, REPOSITORY, "w1")
        await task.upload_cache("a", b"a" * 100)
        controller.clock.advance(10)
        await task.upload_cache("b", b"b" * 100)
        controller.clock.advance(10)
        assert await task.download_cache("a") == b"a" * 100  # a is now used after b
        controller.clock.advance(10)
        await task.upload_cache("c", b"c" * 100)
        await task.upload_cache("huge", b"h" * 200)  # over the per-cache limit
        assert await task.cache_info("b") is None
        assert await task.cache_info("huge") is None
        assert await task.cache_info("a") is not None
        assert await task.cache_info("c") is not None
        assert not (tmp_path / "blobs" / "index" / "caches" / "octo" / "app" / "b.json").exists()


SAMPLE_TESTS = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""


def write_sample(directory: Path) -> None:
    """A directory of its own (``pytest.ini``) with the sample tests."""
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "test_sample.py").write_text(SAMPLE_TESTS)


async def pytest_junit(directory: Path) -> bytes:
    """The JUnit XML of a real pytest run with one passing, one failing and one skipped test."""
    await asyncio.to_thread(write_sample, directory)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--junitxml=junit.xml",
        "test_sample.py",
        cwd=directory,
        env=child_environment(),
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await process.wait() == 1  # one test failed
    return await asyncio.to_thread((directory / "junit.xml").read_bytes)


async def cirrus(controller: RunningController, *args: str) -> tuple[int, str, str]:
    """Run the ``cirrus`` CLI against the controller; return its exit code, stdout, stderr."""
    return await run_cirrus(*args, "--controller", controller.url, "--token", ADMIN_TOKEN)


async def test_junit_of_a_real_pytest_run_gives_counts_through_the_api_and_the_cli(
    controller: RunningController, tmp_path: Path
) -> None:
    junit = await pytest_junit(tmp_path / "run")
    task = await running_task(controller, REPOSITORY, "w1")
    answer = await task.upload_artifact("junit", {"reports/junit.xml": junit}, "text/xml", "junit")
    assert answer.status_code == 200, answer.text
    logs = await task.upload_artifact("logs", {"out.txt": b"hello\n", "deep/er.txt": b"x"})
    assert logs.status_code == 200, logs.text
    listed = (await controller.api("GET", f"/api/v1/tasks/{task.id}/artifacts")).json()
    assert [(a["name"], a["path"], a["size"]) for a in listed["artifacts"]] == [
        ("junit", "reports/junit.xml", len(junit)),
        ("logs", "deep/er.txt", 1),
        ("logs", "out.txt", 6),
    ]
    tests = listed["tests"]
    assert (tests["passed"], tests["failed"], tests["skipped"]) == (1, 1, 1)
    [failure] = tests["failures"]
    assert failure["name"] == "test_sample.test_fails"
    assert "one is not two" in failure["message"]
    download = await controller.api("GET", f"/api/v1/tasks/{task.id}/artifacts/logs/out.txt")
    assert download.content == b"hello\n"

    code, out, err = await cirrus(
        controller, "task", "artifacts", task.id, "--download", str(tmp_path / "copied")
    )
    assert code == 0, err
    assert "tests: 1 passed, 1 failed (test_sample.test_fails), 1 skipped" in out
    assert (tmp_path / "copied" / "junit" / "reports" / "junit.xml").read_bytes() == junit
    assert (tmp_path / "copied" / "logs" / "deep" / "er.txt").read_bytes() == b"x"
    await task.worker.finished(task.task, {})
    await task.worker.stopped(task.task)
    build_id = (await controller.task(task.id))["buildId"]
    code, out, err = await cirrus(controller, "build", "status", build_id)
    assert code == 0, err
    assert "    tests: 1 passed, 1 failed (test_sample.test_fails), 1 skipped" in out


async def test_a_commit_of_a_file_never_uploaded_is_refused_naming_it(
    controller: RunningController,
) -> None:
    task = await running_task(controller, REPOSITORY, "w1")
    listed = [{"path": "missing.txt", "sizeInBytes": "3"}]
    commit = {"name": "logs", "files": listed}
    refused = await task.call("CommitUploadedArtifacts", commit)
    assert refused.status_code == 412
    assert refused.json()["code"] == "failed_precondition"
    assert "missing.txt" in refused.json()["msg"]
    wrong_size = await task.upload_artifact("logs", {"a.txt": b"abc"})
    assert wrong_size.status_code == 200
    bigger = {"name": "logs", "files": [{"path": "a.txt", "sizeInBytes": "4"}]}
    assert (await task.call("CommitUploadedArtifacts", bigger)).status_code == 412
    listing = (await controller.api("GET", f"/api/v1/tasks/{task.id}/artifacts")).json()
    assert listing == {
        "artifacts": [
            {
                "name": "logs",
                "path": "a.txt",
                "size": 3,
                "sha256": listing["artifacts"][0]["sha256"],
                "type": "",
                "format": "",
            }
        ],
        "tests": None,
    }


async def test_a_junit_file_that_is_not_xml_still_commits_with_a_notice(
    controller: RunningController,
) -> None:
    task = await running_task(controller, REPOSITORY, "w1")
    answer = await task.upload_artifact("junit", {"junit.xml": b"<testsuite><oops"}, "", "junit")
    assert answer.status_code == 200, answer.text
    listing = (await controller.api("GET", f"/api/v1/tasks/{task.id}/artifacts")).json()
    assert [a["path"] for a in listing["artifacts"]] == ["junit.xml"]
    assert (listing["tests"]["passed"], listing["tests"]["failed"]) == (0, 0)
    [notice] = listing["tests"]["notices"]
    assert notice.startswith("junit/junit.xml: unparseable JUnit XML")


async def test_artifacts_need_the_admin_token_and_a_known_task(
    controller: RunningController,
) -> None:
    task = await running_task(controller, REPOSITORY, "w1")
    path = f"/api/v1/tasks/{task.id}/artifacts"
    assert (await controller.api("GET", path, token=None)).status_code == 401
    assert (await controller.api("GET", "/api/v1/tasks/999/artifacts")).status_code == 404
    assert (await controller.api("GET", path + "/logs/none.txt")).status_code == 404
