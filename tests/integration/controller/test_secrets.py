"""Secrets over real HTTP: ``POST /api/v1/secrets/encrypt`` and decrypted ``InitialCommands``."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.storage.sqlite_store import SqliteStore
from domain.build import BuildSpec, TaskSpec
from tests.integration.controller.conftest import CI, RunningController, ShiftableClock

pytestmark = pytest.mark.integration

SECRET = "s3cr3t value"


async def _encrypt(controller: RunningController, value: str, repository: str = "") -> str:
    response = await controller.api(
        "POST", "/api/v1/secrets/encrypt", {"value": value, "repository": repository}
    )
    assert response.status_code == 200, response.text
    encrypted: str = response.json()["encrypted"]
    return encrypted


async def test_encrypting_needs_the_admin_token(controller: RunningController) -> None:
    for token in (None, "wrong"):
        response = await controller.api(
            "POST", "/api/v1/secrets/encrypt", {"value": "x"}, token=token
        )
        assert response.status_code == 401
        assert "encrypted" not in response.text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"value": ""}, "must not be empty"),
        ({}, "invalid request body: value: Field required"),
        ({"value": "x", "repo": "acme/app"}, "invalid request body: repo: Extra inputs"),
        ({"value": 3}, "invalid request body: value: Input should be a valid string"),
        ({"value": "x", "repository": "acme/my app"}, "must not contain blanks"),
    ],
)
async def test_a_bad_request_is_a_400_saying_what_is_wrong(
    controller: RunningController, body: dict[str, object], error: str
) -> None:
    response = await controller.api("POST", "/api/v1/secrets/encrypt", body)

    assert response.status_code == 400
    assert error in response.json()["error"]


async def test_the_openapi_document_describes_the_call(controller: RunningController) -> None:
    document = (await controller.api("GET", "/openapi.json", token=None)).json()

    operation = document["paths"]["/api/v1/secrets/encrypt"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "413", "503"}
    assert document["components"]["schemas"]["SecretEncryption"]["required"] == ["value"]


async def test_a_task_gets_its_secrets_decrypted_and_masked_while_the_store_keeps_them_encrypted(
    controller: RunningController, tmp_path: Path
) -> None:
    bound = await _encrypt(controller, SECRET, "Acme/App")
    anywhere = await _encrypt(controller, "other one")
    config = f"task:\n  name: deploy\n  env:\n    TOKEN: {bound}\n  script: echo hi\n"
    build = await controller.submit(
        config, {"CIRRUS_REPO_FULL_NAME": "acme/app", "ANYWHERE": anywhere}
    )
    worker = controller.worker("w1")
    await worker.register()

    [task] = (await worker.poll())["tasksToStart"]
    await worker.started(task)
    commands = await worker.initial_commands(task)

    assert commands["environment"]["TOKEN"] == SECRET
    assert commands["environment"]["ANYWHERE"] == "other one"
    assert sorted(commands["secretsToMask"]) == sorted([SECRET, "other one"])
    store = await SqliteStore.open(tmp_path / "controller.db", ShiftableClock())
    try:
        record = await store.get_task(build["tasks"][0]["id"])
        build_environment = await store.build_environment(build["id"])
    finally:
        await store.aclose()
    assert record is not None
    assert record.spec.environment["TOKEN"] == bound
    assert build_environment is not None
    assert build_environment["ANYWHERE"] == anywhere


async def test_a_secret_of_another_repository_is_refused_to_the_worker_naming_the_variable(
    controller: RunningController, tmp_path: Path
) -> None:
    # Written to the database directly: the submission check of parsing would refuse it first.
    theirs = await _encrypt(controller, SECRET, "acme/other")
    store = await SqliteStore.open(tmp_path / "controller.db", ShiftableClock())
    try:
        await store.create_build(
            BuildSpec(
                tasks=(TaskSpec(name="deploy", environment={"DEPLOY_KEY": theirs}),),
                environment={"CIRRUS_REPO_FULL_NAME": "acme/app"},
            )
        )
    finally:
        await store.aclose()
    worker = controller.worker("w1")
    await worker.register()

    [task] = (await worker.poll())["tasksToStart"]
    response = await worker.call(
        CI, "InitialCommands", {"localTimestamp": "0"}, worker.task_headers(task)
    )

    assert response.status_code == 412
    assert response.json()["code"] == "failed_precondition"
    message = response.json()["msg"]
    assert "environment variable DEPLOY_KEY" in message
    assert "another repository" in message
    assert SECRET not in response.text
