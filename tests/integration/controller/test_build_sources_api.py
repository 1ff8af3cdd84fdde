"""Builds with a source on a real controller: shown, turned into CIRRUS_* variables, used by
``changesInclude`` and ``fs``, and listed by repository and branch."""

from __future__ import annotations

from typing import Any

from tests.integration.controller.conftest import RunningController
from tests.integration.controller.test_snapshots_api import tar_gz, upload

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ONE_TASK = "task:\n  name: t\n  script: echo hi\n"
GIT_SOURCE = {
    "repository": "octo/app",
    "cloneUrl": "https://example.com/octo/app.git",
    "branch": "topic",
    "pr": 12,
    "baseBranch": "main",
    "commit": COMMIT,
    "changeTitle": "Fix the docs",
    "changeMessage": "Fix the docs\n\nAnd more.",
    "changeAuthor": "Ann",
    "defaultBranch": "main",
    "changedFiles": ["docs/intro.md"],
}


async def submit(
    controller: RunningController,
    config: str,
    source: dict[str, Any] | None,
    environment: dict[str, str] | None = None,
    starlark: str = "",
) -> dict[str, Any]:
    """Submit a build with a source; it must be accepted."""
    body: dict[str, Any] = {"config": config, "environment": environment or {}}
    if source is not None:
        body["source"] = source
    if starlark:
        body["starlark"] = starlark
    response = await controller.api("POST", "/api/v1/builds", body)
    assert response.status_code == 201, response.text
    build: dict[str, Any] = response.json()
    return build


async def test_a_build_with_a_git_source_shows_it_and_its_tasks_see_its_variables(
    controller: RunningController,
) -> None:
    worker = controller.worker("w1")
    await worker.register()
    build = await submit(controller, ONE_TASK, GIT_SOURCE, {"CIRRUS_BASE_BRANCH": "override"})
    assert build["source"] == GIT_SOURCE
    assert build["createdAt"].endswith("Z")
    assert (await controller.build(build["id"]))["source"] == GIT_SOURCE
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    environment = (await worker.initial_commands(task))["environment"]
    expected = {
        "CIRRUS_REPO_FULL_NAME": "octo/app",
        "CIRRUS_REPO_OWNER": "octo",
        "CIRRUS_REPO_NAME": "app",
        "CIRRUS_REPO_CLONE_URL": "https://example.com/octo/app.git",
        "CIRRUS_DEFAULT_BRANCH": "main",
        "CIRRUS_BRANCH": "pull/12",
        "CIRRUS_HEAD_BRANCH": "topic",
        "CIRRUS_PR": "12",
        "CIRRUS_BASE_BRANCH": "override",  # the submitted environment wins
        "CIRRUS_CHANGE_IN_REPO": COMMIT,
        "CIRRUS_CHANGE_TITLE": "Fix the docs",
        "CIRRUS_CHANGE_MESSAGE": "Fix the docs\n\nAnd more.",
    }
    assert {key: environment.get(key) for key in expected} == expected


async def test_a_snapshot_build_gets_the_snapshot_variables(
    controller: RunningController,
) -> None:
    snapshot = (await upload(controller, tar_gz({"a.txt": b"1"}))).json()
    build = await submit(controller, ONE_TASK, {"snapshot": snapshot["id"], "branch": "main"})
    assert build["source"] == {
        "snapshot": snapshot["id"],
        "snapshotSha256": snapshot["sha256"],
        "branch": "main",
    }
    worker = controller.worker("w1")
    await worker.register()
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    environment = (await worker.initial_commands(task))["environment"]
    assert environment["CIRRUS_SNAPSHOT"] == snapshot["id"]
    assert environment["CIRRUS_SNAPSHOT_SHA256"] == snapshot["sha256"]
    assert environment["CIRRUS_BRANCH"] == "main"


async def test_changes_include_skips_or_runs_a_task_by_the_sources_changed_files(
    controller: RunningController,
) -> None:
    config = "task:\n  name: docs\n  only_if: changesInclude('docs/**')\n  script: make docs\n"
    with_docs = await submit(controller, config, {"changedFiles": ["docs/intro.md"]})
    without = await submit(controller, config, {"changedFiles": ["src/main.py"]})
    assert [task["name"] for task in with_docs["tasks"]] == ["docs"]
    assert without["tasks"] == []
    assert without["status"] == "COMPLETED"
    assert with_docs["tasks"][0]["status"] == "SCHEDULED"


async def test_a_star_file_of_a_snapshot_build_reads_the_snapshots_files(
    controller: RunningController,
) -> None:
    snapshot = (
        await upload(
            controller,
            tar_gz({"./ci/one.sh": b"echo one", "ci/two.sh": b"echo two", "README": b"x"}),
        )
    ).json()
    starlark = """
load("cirrus", "fs")
def main(ctx):
    names = fs.readdir("ci")
    return [{"name": n, "script": fs.read("ci/" + n)} for n in names]
"""
    build = await submit(controller, "", {"snapshot": snapshot["id"]}, starlark=starlark)
    assert [task["name"] for task in build["tasks"]] == ["one.sh", "two.sh"]
    task = await controller.task(build["tasks"][0]["id"])
    assert task["commands"][-1]["name"] == "main"


async def test_a_malformed_source_is_refused_naming_the_field(
    controller: RunningController,
) -> None:
    for source, message in [
        ({"pr": -1}, "source.pr: expected a positive integer"),
        ({"commit": "xyz"}, "source.commit: 'xyz' is not a commit SHA"),
        ({"sha": COMMIT}, "source.sha: unknown field"),
        ({"changedFiles": "docs"}, "source.changedFiles: expected a list of strings"),
    ]:
        response = await controller.api(
            "POST", "/api/v1/builds", {"config": ONE_TASK, "source": source}
        )
        assert response.status_code == 400
        assert message in response.json()["error"]


async def test_builds_are_listed_newest_first_by_repository_and_branch(
    controller: RunningController,
) -> None:
    ids = []
    for repository, branch in [("o/a", "main"), ("o/b", "main"), ("o/a", "dev"), ("o/a", "main")]:
        build = await submit(controller, ONE_TASK, {"repository": repository, "branch": branch})
        ids.append(build["id"])

    async def listed(query: str) -> list[str]:
        response = await controller.api("GET", f"/api/v1/builds{query}")
        assert response.status_code == 200, response.text
        return [build["id"] for build in response.json()["builds"]]

    assert await listed("?repository=o/a&branch=main") == [ids[3], ids[0]]
    assert await listed("?repository=o/a") == [ids[3], ids[2], ids[0]]
    assert await listed("") == ids[::-1]
    assert await listed(f"?limit=2&before={ids[3]}") == [ids[2], ids[1]]
    assert await listed("?status=executing&branch=dev") == [ids[2]]
    assert await listed("?status=FAILED") == []
    for bad in ("?limit=0", "?status=DONE", "?colour=red"):
        response = await controller.api("GET", f"/api/v1/builds{bad}")
        assert response.status_code == 400, bad
    unauthorized = await controller.api("GET", "/api/v1/builds", token=None)
    assert unauthorized.status_code == 401
