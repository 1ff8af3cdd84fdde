"""``/api/v1/repositories`` over real HTTP, and the clone token tasks get at ``InitialCommands``."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.controller.conftest import Json, RunningController

pytestmark = pytest.mark.integration

TOKEN = "gitea-token-of-acme-app-0123456789"
CONFIG = "task:\n  name: build\n  script: echo hi\n"
REGISTRATION = {
    "name": "Acme/App",
    "forge": "gitea",
    "url": "https://gitea.example/api/v1/",
    "token": TOKEN,
}


async def register(controller: RunningController, **changes: Any) -> Json:
    """Register a repository that must be accepted (201 or 200); return the answer."""
    response = await controller.api("POST", "/api/v1/repositories", {**REGISTRATION, **changes})
    assert response.status_code in (200, 201), response.text
    answer: Json = response.json()
    assert (response.status_code == 201) is answer["created"]
    return answer


async def initial_commands_of(
    controller: RunningController, environment: dict[str, str], config: str = CONFIG
) -> Json:
    """Submit a build, take its task with a new worker, and return its ``InitialCommands``."""
    build = await controller.submit(config, environment)
    worker = controller.worker(f"worker-{build['id']}")
    await worker.register()
    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    return await worker.initial_commands(task)


async def test_a_new_repository_gets_a_generated_webhook_secret_shown_once(
    controller: RunningController,
) -> None:
    created = await register(controller)
    assert created["created"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", created["webhookSecret"])
    assert created["name"] == "Acme/App"
    assert created["url"] == "https://gitea.example/api/v1"
    assert created["cloneUrl"] == "https://gitea.example/Acme/App.git"

    again = await register(controller, name="acme/app", cloneUrl="https://mirror.example/a.git")
    assert again["created"] is False
    assert "webhookSecret" not in again
    assert again["createdAt"] == created["createdAt"]

    listed = await controller.api("GET", "/api/v1/repositories")
    assert listed.status_code == 200
    assert listed.json() == {
        "repositories": [
            {
                "name": "acme/app",
                "forge": "gitea",
                "url": "https://gitea.example/api/v1",
                "cloneUrl": "https://mirror.example/a.git",
                "createdAt": created["createdAt"],
                "updatedAt": again["updatedAt"],
            }
        ]
    }
    assert TOKEN not in listed.text
    assert created["webhookSecret"] not in listed.text


async def test_both_calls_need_the_admin_token(controller: RunningController) -> None:
    for method, body in (("POST", REGISTRATION), ("GET", None)):
        response = await controller.api(method, "/api/v1/repositories", body, token="wrong")
        assert response.status_code == 401
        assert TOKEN not in response.text
    assert (await controller.api("GET", "/api/v1/repositories")).json() == {"repositories": []}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"name": "acme"}, "repository 'acme' is not OWNER/NAME"),
        ({"forge": "gitlab"}, "unknown forge 'gitlab'"),
        ({"url": "ftp://gitea.example"}, "url: 'ftp://gitea.example' is not an http"),
        ({"cloneUrl": "https://u:p@x.example/a.git"}, "cloneUrl: "),
        ({"token": " "}, "token must not be empty"),
        ({"webhookSecret": ""}, "webhookSecret must not be empty"),
        ({"secret": "x"}, "invalid request body: secret: Extra inputs"),
        ({"token": None}, "invalid request body: token: Input should be a valid string"),
    ],
)
async def test_a_bad_registration_is_a_400_naming_what_is_wrong(
    controller: RunningController, changes: Json, error: str
) -> None:
    response = await controller.api("POST", "/api/v1/repositories", {**REGISTRATION, **changes})
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert (await controller.api("GET", "/api/v1/repositories")).json() == {"repositories": []}


async def test_a_task_of_the_repository_gets_the_token_masked_and_its_clone_url(
    controller: RunningController,
) -> None:
    await register(controller)
    commands = await initial_commands_of(controller, {"CIRRUS_REPO_FULL_NAME": "ACME/app"})
    environment = commands["environment"]
    assert environment["CIRRUS_REPO_CLONE_TOKEN"] == TOKEN
    assert environment["CIRRUS_REPO_CLONE_URL"] == "https://gitea.example/Acme/App.git"
    assert TOKEN in commands["secretsToMask"]


async def test_a_task_keeps_its_own_clone_url_and_the_registered_token_beats_its_config(
    controller: RunningController,
) -> None:
    await register(controller)
    config = "task:\n  name: build\n  env:\n    CIRRUS_REPO_CLONE_TOKEN: mine\n  script: echo\n"
    commands = await initial_commands_of(
        controller,
        {"CIRRUS_REPO_FULL_NAME": "acme/app", "CIRRUS_REPO_CLONE_URL": "https://m.example/a.git"},
        config,
    )
    assert commands["environment"]["CIRRUS_REPO_CLONE_URL"] == "https://m.example/a.git"
    assert commands["environment"]["CIRRUS_REPO_CLONE_TOKEN"] == TOKEN


async def test_a_task_of_another_or_no_repository_gets_no_token(
    controller: RunningController,
) -> None:
    await register(controller)
    other = await initial_commands_of(controller, {"CIRRUS_REPO_FULL_NAME": "acme/other"})
    none = await initial_commands_of(controller, {})
    for commands in (other, none):
        assert "CIRRUS_REPO_CLONE_TOKEN" not in commands["environment"]
        assert "CIRRUS_REPO_CLONE_URL" not in commands["environment"]
        assert TOKEN not in str(commands)


async def test_a_build_bringing_its_own_clone_token_is_refused_and_not_stored(
    controller: RunningController,
) -> None:
    response = await controller.api(
        "POST",
        "/api/v1/builds",
        {"config": CONFIG, "environment": {"CIRRUS_REPO_CLONE_TOKEN": TOKEN}},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "environment: CIRRUS_REPO_CLONE_TOKEN is set by the controller"
    )
    assert TOKEN not in response.text


async def test_the_openapi_document_describes_both_calls(controller: RunningController) -> None:
    document = (await controller.api("GET", "/openapi.json", token=None)).json()
    operations = document["paths"]["/api/v1/repositories"]
    assert set(operations["post"]["responses"]) == {"200", "201", "400", "401", "403", "413", "503"}
    assert set(operations["get"]["responses"]) == {"200", "401", "403", "503"}
    registration = document["components"]["schemas"]["RepositoryRegistration"]
    assert registration["required"] == ["name", "forge", "url", "token"]
