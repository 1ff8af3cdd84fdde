"""``auto_cancellation`` on a real controller: a newer build of a branch (or of a pull request)
aborts the unfinished tasks of older ones whose flag is on; the default branch, other branches,
tags and finished tasks are left alone."""

from __future__ import annotations

from typing import Any

from tests.integration.controller.conftest import RunningController
from tests.integration.controller.test_build_sources_api import submit

# No worker registers: every task waits, so only auto-cancellation can end it.
CONFIG = "task:\n  name: t\n  script: echo hi\n"
KEEP = "task:\n  name: t\n  auto_cancellation: false\n  script: echo hi\n"


def source(branch: str, **more: Any) -> dict[str, Any]:
    """A git source of ``octo/app`` on ``branch`` (default branch ``main``)."""
    return {
        "repository": "octo/app",
        "cloneUrl": "https://example.com/octo/app.git",
        "branch": branch,
        "defaultBranch": "main",
        **more,
    }


async def statuses(controller: RunningController, build: dict[str, Any]) -> list[str]:
    """The statuses of a build's tasks now."""
    return [task["status"] for task in (await controller.build(build["id"]))["tasks"]]


async def test_a_newer_build_of_a_feature_branch_aborts_the_older_ones_waiting_task(
    controller: RunningController,
) -> None:
    first = await submit(controller, CONFIG, source("feature"))
    assert await statuses(controller, first) == ["SCHEDULED"]
    second = await submit(controller, CONFIG, source("feature"))
    assert await statuses(controller, first) == ["ABORTED"]
    assert await statuses(controller, second) == ["SCHEDULED"]


async def test_the_default_branch_another_branch_and_a_tag_are_not_superseded(
    controller: RunningController,
) -> None:
    main = await submit(controller, CONFIG, source("main"))
    other = await submit(controller, CONFIG, source("other"))
    tagged = await submit(controller, CONFIG, source("", tag="v1.0"))
    await submit(controller, CONFIG, source("main"))
    await submit(controller, CONFIG, source("feature"))
    await submit(controller, CONFIG, source("", tag="v1.0"))
    # main: auto_cancellation defaults to false on the default branch.
    assert await statuses(controller, main) == ["SCHEDULED"]
    assert await statuses(controller, other) == ["SCHEDULED"]
    assert await statuses(controller, tagged) == ["SCHEDULED"]


async def test_a_task_that_turned_auto_cancellation_off_keeps_running(
    controller: RunningController,
) -> None:
    kept = await submit(controller, KEEP, source("feature"))
    await submit(controller, CONFIG, source("feature"))
    assert await statuses(controller, kept) == ["SCHEDULED"]


async def test_pull_requests_supersede_builds_of_the_same_pull_request_only(
    controller: RunningController,
) -> None:
    pr7 = await submit(controller, CONFIG, source("topic", pr=7, baseBranch="main"))
    pr8 = await submit(controller, CONFIG, source("topic", pr=8, baseBranch="main"))
    assert await statuses(controller, pr7) == ["SCHEDULED"]
    await submit(controller, CONFIG, source("topic", pr=7, baseBranch="main"))
    assert await statuses(controller, pr7) == ["ABORTED"]
    assert await statuses(controller, pr8) == ["SCHEDULED"]


async def test_a_build_without_a_source_supersedes_nothing(
    controller: RunningController,
) -> None:
    first = await submit(controller, CONFIG, source("feature"))
    await submit(controller, CONFIG, None, {"CIRRUS_BRANCH": "feature"})
    assert await statuses(controller, first) == ["SCHEDULED"]
