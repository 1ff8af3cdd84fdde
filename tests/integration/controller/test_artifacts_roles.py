"""The artifacts API takes user tokens with roles, like the rest of ``/api/v1``: a viewer lists
and downloads a task's artifacts; a token of no role is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.integration.controller.conftest import RunningController
from tests.integration.controller.test_caches_and_artifacts import REPOSITORY, running_task, start

pytestmark = pytest.mark.integration


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[RunningController]:
    """A controller with the filesystem blob store."""
    async with AsyncExitStack() as stack:
        yield await start(stack, tmp_path)


async def test_a_viewer_token_lists_and_downloads_a_tasks_artifacts(
    controller: RunningController,
) -> None:
    task = await running_task(controller, REPOSITORY, "w1")
    answer = await task.upload_artifact("logs", {"out.txt": b"hello viewer\n"})
    assert answer.status_code == 200, answer.text
    made = await controller.api("POST", "/api/v1/tokens", {"role": "viewer", "name": "reader"})
    assert made.status_code == 201, made.text
    viewer = made.json()["token"]
    path = f"/api/v1/tasks/{task.id}/artifacts"
    listed = await controller.api("GET", path, token=viewer)
    assert listed.status_code == 200, listed.text
    assert [(a["name"], a["path"]) for a in listed.json()["artifacts"]] == [("logs", "out.txt")]
    download = await controller.api("GET", path + "/logs/out.txt", token=viewer)
    assert (download.status_code, download.content) == (200, b"hello viewer\n")


async def test_the_artifacts_api_refuses_a_token_it_does_not_know(
    controller: RunningController,
) -> None:
    task = await running_task(controller, REPOSITORY, "w1")
    path = f"/api/v1/tasks/{task.id}/artifacts"
    refused = await controller.api("GET", path, token="not-a-token")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
