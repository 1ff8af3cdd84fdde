"""Forge webhooks, commit statuses and fork approvals on a real controller (SQLite), with a
forge stand-in on 127.0.0.1 that serves the API from real git repositories and records the
statuses posted to it. Tasks are run by a Twirp worker client, as a worker would."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.storage.sqlite_store import SqliteStore
from app.controller.forge_settings import ForgeSettings
from app.controller.server import create_app
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    REGISTRATION_TOKEN,
    RunningController,
    ShiftableClock,
    serve_controller,
)
from tests.integration.forge_standin import (
    ForgeState,
    deliver,
    forge_standin,
    pull_request_payload,
    push_payload,
)
from tests.integration.git_servers import Repo

SECRET = "webhook-secret-for-tests"
REPOSITORY = "acme/app"
PUBLIC_URL = "https://ci.example.test"
CONFIG = """\
env:
  DEPLOY_KEY: {secret}
task:
  name: unit
  script: echo hi
"""
ZERO = "0" * 40


@dataclass
class Scene:
    """A controller, the forge stand-in, and the repository it serves."""

    controller: RunningController
    forge: ForgeState
    repo: Repo
    forge_url: str


@pytest.fixture
def forge_state(tmp_path: Path) -> Iterator[tuple[ForgeState, Repo, str]]:
    """The stand-in serving ``acme/app``."""
    repo = Repo(tmp_path / "git", "app")
    state = ForgeState(repositories={REPOSITORY: repo.bare})
    with forge_standin(state) as url:
        yield state, repo, url


@pytest.fixture
async def scene(tmp_path: Path, forge_state: tuple[ForgeState, Repo, str]) -> AsyncIterator[Scene]:
    """A controller with fast status retries and ``acme/app`` registered on the stand-in."""
    state, repo, url = forge_state
    async with AsyncExitStack() as stack:
        clock = ShiftableClock()
        store = await SqliteStore.open(tmp_path / "controller.db", clock)
        stack.push_async_callback(store.aclose)
        settings = ForgeSettings(
            public_url=PUBLIC_URL,
            retry_initial_seconds=0.05,
            retry_max_seconds=0.2,
            scan_seconds=0.05,
            cron_check_seconds=0.1,
        )
        app = create_app(
            store,
            registration_token=REGISTRATION_TOKEN,
            admin_token=ADMIN_TOKEN,
            poll_interval_seconds=1,
            clock=clock,
            forge=settings,
        )
        controller = await serve_controller(stack, app, clock, 1)
        registration = {
            "name": REPOSITORY,
            "forge": "github",
            "url": url,
            "token": "forge-token",
            "webhookSecret": SECRET,
            "cloneUrl": "http://127.0.0.1:9/acme/app.git",
        }
        answer = await controller.api("POST", "/api/v1/repositories", registration)
        assert answer.status_code in (200, 201), answer.text
        yield Scene(controller, state, repo, url)


async def encrypted(scene: Scene, value: str) -> str:
    """``value`` encrypted for the repository by the controller."""
    body = {"value": value, "repository": REPOSITORY}
    answer = await scene.controller.api("POST", "/api/v1/secrets/encrypt", body)
    return str(answer.json()["encrypted"])


async def push(scene: Scene, before: str, after: str, delivery: str) -> Any:
    """Deliver a push of ``main``; return the answer."""
    payload = push_payload(REPOSITORY, "main", before, after, "http://unused")
    return await deliver(scene.controller.http, "github", "push", payload, SECRET, delivery)


async def until(condition: Any, deadline: float = 10.0) -> None:
    """Wait until the async ``condition`` holds."""
    end = time.monotonic() + deadline
    while not await condition():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.02)


async def run_one_task(scene: Scene, status: str = "COMPLETED") -> dict[str, Any]:
    """Let a worker take one task and end it with ``status``; return InitialCommands."""
    worker = scene.controller.worker("w1")
    await worker.register()
    answer = await worker.poll()
    tasks = answer.get("tasksToStart", [])
    assert len(tasks) == 1, answer
    await worker.started(tasks[0])
    commands = await worker.initial_commands(tasks[0])
    for command in commands["commands"]:
        await worker.report(tasks[0], command["name"], status, 1000)
    await worker.finished(tasks[0], {c["name"]: status for c in commands["commands"]})
    await worker.stopped(tasks[0])
    return commands


async def test_a_push_builds_the_pushed_commit_and_its_statuses_go_from_pending_to_success(
    scene: Scene,
) -> None:
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="plain")}, "first")
    answer = await push(scene, ZERO, sha, "d-1")
    assert answer.status_code == 201, answer.text
    build = await scene.controller.build(answer.json()["build"])
    assert build["source"]["commit"] == sha
    assert build["source"]["branch"] == "main"
    commands = await run_one_task(scene)
    assert commands["environment"]["CIRRUS_CHANGE_IN_REPO"] == sha
    assert commands["environment"]["CIRRUS_USER_PERMISSION"] == "read"

    async def posted() -> bool:
        return scene.forge.statuses_of("cirrus-ci")[-1:] == ["success"]

    await until(posted)
    assert scene.forge.statuses_of("cirrus-ci/unit")[0] == "pending"
    assert scene.forge.statuses_of("cirrus-ci/unit")[-1] == "success"
    task_id = build["tasks"][0]["id"]
    links = {s["target_url"] for s in scene.forge.statuses if s["context"] == "cirrus-ci/unit"}
    assert links == {f"{PUBLIC_URL}/tasks/{task_id}"}
    assert {s["sha"] for s in scene.forge.statuses} == {sha}


async def test_a_failed_task_posts_failure(scene: Scene) -> None:
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="plain")}, "first")
    assert (await push(scene, ZERO, sha, "d-1")).status_code == 201
    await run_one_task(scene, "FAILED")

    async def posted() -> bool:
        return scene.forge.statuses_of("cirrus-ci")[-1:] == ["failure"]

    await until(posted)


async def test_a_forged_signature_gets_401_and_creates_no_build(scene: Scene) -> None:
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="plain")}, "first")
    payload = push_payload(REPOSITORY, "main", ZERO, sha, "http://unused")
    http = scene.controller.http
    answer = await deliver(http, "github", "push", payload, "not-the-secret", "d-1")
    assert answer.status_code == 401
    builds = await scene.controller.api("GET", "/api/v1/builds")
    assert builds.json()["builds"] == []


async def test_a_redelivered_hook_creates_no_second_build(scene: Scene) -> None:
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="plain")}, "first")
    assert (await push(scene, ZERO, sha, "d-1")).status_code == 201
    again = await push(scene, ZERO, sha, "d-1")
    assert again.status_code == 200
    assert again.json() == {"duplicate": "d-1"}
    builds = await scene.controller.api("GET", "/api/v1/builds")
    assert len(builds.json()["builds"]) == 1


async def test_an_unknown_event_is_accepted_and_ignored(scene: Scene) -> None:
    payload = {"repository": {"full_name": REPOSITORY}, "zen": "Keep it simple."}
    http = scene.controller.http
    answer = await deliver(http, "github", "ping", payload, SECRET, "d-ping")
    assert answer.status_code == 202
    assert (await scene.controller.api("GET", "/api/v1/builds")).json()["builds"] == []


async def test_a_second_push_to_a_branch_cancels_the_first_build(scene: Scene) -> None:
    first = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="x")}, "one", "feature")
    second = scene.repo.commit({"README.md": "more"}, "two", "feature")
    http = scene.controller.http
    payload = push_payload(REPOSITORY, "feature", ZERO, first, "http://unused")
    one = await deliver(http, "github", "push", payload, SECRET, "d-1")
    payload = push_payload(REPOSITORY, "feature", first, second, "http://unused")
    two = await deliver(http, "github", "push", payload, SECRET, "d-2")
    assert one.status_code == two.status_code == 201
    old = await scene.controller.build(one.json()["build"])
    new = await scene.controller.build(two.json()["build"])
    assert [t["status"] for t in old["tasks"]] == ["ABORTED"]
    assert [t["status"] for t in new["tasks"]] == ["SCHEDULED"]
    assert new["source"]["changedFiles"] == ["README.md"]


async def test_deleting_a_branch_cancels_its_running_builds(scene: Scene) -> None:
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="x")}, "one", "feature")
    http = scene.controller.http
    payload = push_payload(REPOSITORY, "feature", ZERO, sha, "http://unused")
    built = await deliver(http, "github", "push", payload, SECRET, "d-1")
    deleted = {"ref": "feature", "ref_type": "branch", "repository": {"full_name": REPOSITORY}}
    answer = await deliver(http, "github", "delete", deleted, SECRET, "d-2")
    assert answer.status_code == 200, answer.text
    build = await scene.controller.build(built.json()["build"])
    assert [t["status"] for t in build["tasks"]] == ["ABORTED"]


async def test_a_pull_request_from_a_fork_waits_for_approval_and_gets_no_secret_before(
    scene: Scene,
) -> None:
    secret = await encrypted(scene, "s3cret-value")
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret=secret)}, "pr", "patch")
    payload = pull_request_payload(REPOSITORY, "mallory/app", 7, "patch", sha)
    http = scene.controller.http
    answer = await deliver(http, "github", "pull_request", payload, SECRET, "d-pr")
    assert answer.status_code == 201, answer.text
    build_id = answer.json()["build"]
    build = await scene.controller.build(build_id)
    task = await scene.controller.task(build["tasks"][0]["id"])
    assert task["status"] == "CREATED"
    assert task["pendingReason"] == "waiting for approval: pull request from a fork"
    worker = scene.controller.worker("w1")
    await worker.register()
    assert (await worker.poll()).get("tasksToStart", []) == []

    async def pending_posted() -> bool:
        return scene.forge.statuses_of("cirrus-ci/unit") == ["pending"]

    await until(pending_posted)
    viewer = await scene.controller.api("POST", "/api/v1/tokens", {"role": "viewer"})
    refused = await scene.controller.api(
        "POST", f"/api/v1/builds/{build_id}/approve", token=viewer.json()["token"]
    )
    assert refused.status_code == 403
    approved = await scene.controller.api("POST", f"/api/v1/builds/{build_id}/approve")
    assert approved.status_code == 200, approved.text
    commands = await run_one_task(scene)
    assert commands["environment"]["DEPLOY_KEY"] == "s3cret-value"
    assert commands["environment"]["CIRRUS_PR"] == "7"
    assert commands["environment"]["CIRRUS_PR_TITLE"] == "Fix the thing"
    assert commands["environment"]["CIRRUS_PR_LABELS"] == "bug"
    assert commands["environment"]["CIRRUS_PR_DRAFT"] == "false"
    again = await scene.controller.api("POST", f"/api/v1/builds/{build_id}/approve")
    assert again.status_code == 409


async def test_a_forge_outage_loses_no_status_and_they_arrive_in_order_afterwards(
    scene: Scene,
) -> None:
    scene.forge.failing = True
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="plain")}, "first")
    assert (await push(scene, ZERO, sha, "d-1")).status_code == 201
    await run_one_task(scene)

    async def retried() -> bool:
        return scene.forge.failed_posts >= 5

    await until(retried)
    assert scene.forge.statuses == []
    scene.forge.failing = False

    async def arrived() -> bool:
        return all(
            scene.forge.statuses_of(context)[-1:] == ["success"]
            for context in ("cirrus-ci", "cirrus-ci/unit")
        )

    await until(arrived)
    for context in ("cirrus-ci", "cirrus-ci/unit"):
        states = scene.forge.statuses_of(context)
        assert states[0] == "pending", (context, states)
        assert states[-1] == "success", (context, states)
        assert states.index("success") == len(states) - 1


async def test_the_build_page_of_a_forks_build_has_an_approve_button_that_starts_it(
    scene: Scene,
) -> None:
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="x")}, "pr", "patch")
    payload = pull_request_payload(REPOSITORY, "mallory/app", 8, "patch", sha)
    http = scene.controller.http
    answer = await deliver(http, "github", "pull_request", payload, SECRET, "d-pr")
    build_id = answer.json()["build"]
    await http.post("/login", data={"token": ADMIN_TOKEN})
    page = await http.get(f"/builds/{build_id}")
    assert "waiting for approval: pull request from a fork" in page.text
    form = re.search(
        rf'action="/builds/{build_id}/approve".*?name="csrf" value="([^"]+)"', page.text, re.S
    )
    assert form is not None, page.text
    approved = await http.post(f"/builds/{build_id}/approve", data={"csrf": form.group(1)})
    assert approved.status_code == 303
    build = await scene.controller.build(build_id)
    assert [t["status"] for t in build["tasks"]] == ["SCHEDULED"]


async def test_a_gitea_push_signed_as_gitea_builds_the_commit_and_posts_statuses_there(
    scene: Scene,
) -> None:
    # The same repository registered again as a Gitea one: its API is the stand-in's /api/v1.
    registration = {
        "name": REPOSITORY,
        "forge": "gitea",
        "url": f"{scene.forge_url}/api/v1",
        "token": "gitea-token",
        "webhookSecret": SECRET,
        "cloneUrl": "http://127.0.0.1:9/acme/app.git",
    }
    answer = await scene.controller.api("POST", "/api/v1/repositories", registration)
    assert answer.status_code == 200, answer.text
    sha = scene.repo.commit({".cirrus.yml": CONFIG.format(secret="plain")}, "first")
    payload = push_payload(REPOSITORY, "main", ZERO, sha, "http://unused")
    forged = await deliver(scene.controller.http, "gitea", "push", payload, "wrong", "g-0")
    assert forged.status_code == 401
    delivered = await deliver(scene.controller.http, "gitea", "push", payload, SECRET, "g-1")
    assert delivered.status_code == 201, delivered.text
    build = await scene.controller.build(delivered.json()["build"])
    assert build["source"]["commit"] == sha
    await run_one_task(scene)

    async def posted() -> bool:
        return scene.forge.statuses_of("cirrus-ci")[-1:] == ["success"]

    await until(posted)
    assert {s["sha"] for s in scene.forge.statuses} == {sha}
    # Read and reported through Gitea's API paths.
    assert f"GET /api/v1/repos/{REPOSITORY}/contents/.cirrus.yml" in scene.forge.requests
    assert f"POST /api/v1/repos/{REPOSITORY}/statuses/{sha}" in scene.forge.requests
