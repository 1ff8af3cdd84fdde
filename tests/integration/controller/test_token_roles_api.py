"""User tokens with roles through a real controller: ``/api/v1/tokens``, the role check of every
API route (401 without a known token, 403 naming the role needed), and ``cirrus token create``,
``cirrus task rerun`` and ``cirrus build rerun`` as real processes."""

from __future__ import annotations

import pytest

from tests.integration.cirrus_command import run_cirrus
from tests.integration.controller.conftest import (
    ADMIN_TOKEN,
    ControllerFactory,
    Json,
    RunningController,
)
from tests.integration.controller.test_reruns_api import CONFIG, failed_build, ids_by_name

pytestmark = pytest.mark.integration


async def make_token(controller: RunningController, role: str, name: str = "") -> Json:
    """``POST /api/v1/tokens`` with the admin token; the answer must be a 201."""
    response = await controller.api("POST", "/api/v1/tokens", {"role": role, "name": name})
    assert response.status_code == 201, response.text
    answer: Json = response.json()
    return answer


async def status_of(
    controller: RunningController, method: str, path: str, token: str, body: Json | None = None
) -> tuple[int, str]:
    """The HTTP status and ``error`` text of a call made with ``token``."""
    response = await controller.api(method, path, body, token=token)
    error = response.json().get("error", "") if response.status_code >= 400 else ""
    return response.status_code, error


async def cli(controller: RunningController, token: str, *args: str) -> tuple[int, str, str]:
    """Run ``cirrus ARGS --controller URL`` with ``token`` as ``CIRRUS_TOKEN``; return its exit
    code, stdout and stderr (the controller serves on this test's event loop meanwhile)."""
    return await run_cirrus(
        *args, "--controller", controller.url, environment={"CIRRUS_TOKEN": token}
    )


async def test_a_new_token_is_shown_once_and_listed_without_it(
    controller: RunningController,
) -> None:
    made = await make_token(controller, "viewer", "dashboard")
    assert (made["name"], made["role"]) == ("dashboard", "viewer")
    assert made["token"].startswith("cirrus_")
    assert len(made["token"]) > 40
    unnamed = await make_token(controller, "operator")
    assert unnamed["name"] == "operator token"
    listed = await controller.api("GET", "/api/v1/tokens")
    assert listed.status_code == 200
    tokens = listed.json()["tokens"]
    assert [(t["id"], t["name"], t["role"]) for t in tokens] == [
        (made["id"], "dashboard", "viewer"),
        (unnamed["id"], "operator token", "operator"),
    ]
    assert made["token"] not in listed.text
    assert all(set(t) == {"id", "name", "role", "createdAt"} for t in tokens)


async def test_a_token_request_with_an_unknown_role_is_refused(
    controller: RunningController,
) -> None:
    response = await controller.api("POST", "/api/v1/tokens", {"role": "root"})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "unknown role 'root': choose one of viewer, operator, admin"
    )


async def test_a_viewer_reads_but_may_not_change_anything(controller: RunningController) -> None:
    viewer = (await make_token(controller, "viewer"))["token"]
    build = await controller.submit(CONFIG)
    task_id = ids_by_name(build)["build"]
    for path in ("/api/v1/builds", f"/api/v1/builds/{build['id']}", f"/api/v1/tasks/{task_id}"):
        assert await status_of(controller, "GET", path, viewer) == (200, "")
    assert await status_of(controller, "GET", "/api/v1/workers", viewer) == (200, "")
    needs_operator = (403, "this needs the operator role; the token has the viewer role")
    for path in (f"/api/v1/tasks/{task_id}/cancel", f"/api/v1/tasks/{task_id}/rerun"):
        assert await status_of(controller, "POST", path, viewer) == needs_operator
    submit = {"config": CONFIG}
    assert await status_of(controller, "POST", "/api/v1/builds", viewer, submit) == needs_operator
    assert (await controller.task(task_id))["status"] == "SCHEDULED"


async def test_an_operator_runs_builds_but_may_not_administer(
    controller: RunningController,
) -> None:
    operator = (await make_token(controller, "operator"))["token"]
    response = await controller.api("POST", "/api/v1/builds", {"config": CONFIG}, token=operator)
    assert response.status_code == 201, response.text
    task_id = ids_by_name(response.json())["build"]
    cancel = f"/api/v1/tasks/{task_id}/cancel"
    assert await status_of(controller, "POST", cancel, operator) == (200, "")
    needs_admin = (403, "this needs the admin role; the token has the operator role")
    assert await status_of(controller, "GET", "/api/v1/tokens", operator) == needs_admin
    made = {"role": "admin"}
    assert await status_of(controller, "POST", "/api/v1/tokens", operator, made) == needs_admin
    assert await status_of(controller, "GET", "/api/v1/repositories", operator) == needs_admin
    secret = {"value": "v"}
    assert (
        await status_of(controller, "POST", "/api/v1/secrets/encrypt", operator, secret)
        == needs_admin
    )


async def test_an_admin_user_token_administers_like_the_admin_token(
    controller: RunningController,
) -> None:
    admin = (await make_token(controller, "admin"))["token"]
    assert await status_of(controller, "GET", "/api/v1/repositories", admin) == (200, "")
    assert await status_of(controller, "POST", "/api/v1/tokens", admin, {"role": "viewer"}) == (
        201,
        "",
    )


async def test_an_unknown_token_is_unauthenticated(controller: RunningController) -> None:
    response = await controller.api("GET", "/api/v1/builds", token="cirrus_not-a-token")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == (
        "missing or wrong token (Bearer): the admin token or a user token"
    )
    assert (await controller.api("GET", "/api/v1/tokens", token=None)).status_code == 401


async def test_the_cli_makes_a_token_that_reruns_failed_tasks(
    start_controller: ControllerFactory,
) -> None:
    controller = await start_controller(poll_interval=1)
    build, _ = await failed_build(controller)
    first = ids_by_name(build)
    code, out, err = await cli(
        controller, ADMIN_TOKEN, "token", "create", "--role", "operator", "--name", "ci"
    )
    assert code == 0, err
    token = out.strip()
    assert token.startswith("cirrus_")
    assert "role operator): keep it now, it is not shown again" in err
    code, out, err = await cli(controller, token, "task", "rerun", first["lint"])
    assert code == 0, err
    [line] = out.splitlines()
    assert line.startswith("task ")
    assert line.endswith(f": lint attempt 2 (re-runs task {first['lint']}): SCHEDULED")
    code, out, err = await cli(controller, token, "build", "rerun", build["id"], "--failed")
    assert code == 0, err
    assert [line.split(": ", 1)[1] for line in out.splitlines()] == [
        f"build attempt 2 (re-runs task {first['build']}): SCHEDULED",
        f"test attempt 2 (re-runs task {first['test']}): CREATED",
    ]
    code, out, err = await cli(controller, token, "build", "rerun", build["id"], "--failed")
    assert (code, out) == (1, "")
    assert err == "cirrus: the build has no failed or aborted task to re-run\n"
    code, _, err = await cli(controller, token, "token", "list")
    assert code == 1
    assert "this needs the admin role; the token has the operator role" in err


async def test_the_cli_refuses_an_unknown_role_as_a_usage_error(
    controller: RunningController,
) -> None:
    code, out, err = await cli(controller, "x", "token", "create", "--role", "root")
    assert (code, out) == (2, "")
    assert "'root' is not one of 'viewer', 'operator', 'admin'" in err
