"""End to end: a push delivered to a real controller process builds the pushed commit; a real
worker clones it from ``git http-backend`` with the repository's token, and the forge
stand-in receives the task's and the build's statuses, pending then success, with links."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.forge_standin import (
    ForgeState,
    forge_standin,
    push_payload,
    signed_headers,
)
from tests.integration.git_servers import Repo, http_backend
from tests.integration.test_controller_cli import (
    START_TIMEOUT,
    Process,
    cli,
    printed_token,
    start_controller,
    wait_for,
)

pytestmark = pytest.mark.integration

CONFIG = "task:\n  name: check\n  script: cat data.txt\n"
TOKEN = "forge-token-for-tests"
SECRET = "webhook-secret-for-tests"


def test_a_pushed_commit_is_cloned_by_a_real_worker_and_its_statuses_reach_the_forge(
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "git", "app")
    sha = repo.commit({".cirrus.yml": CONFIG, "data.txt": "hello from the commit\n"}, "first")
    repo.commit({"data.txt": "a later commit\n"}, "second", "other")
    state = ForgeState(repositories={"acme/app": repo.bare})
    (tmp_path / "token.txt").write_text(TOKEN + "\n")
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    controller_file = tmp_path / "controller.yml"
    controller_file.write_text("public-url: https://ci.example.test\nforge-scan-seconds: 0.2\n")
    with forge_standin(state) as forge_url, http_backend(tmp_path / "git", TOKEN) as git_url:
        controller, url = start_controller(
            tmp_path, tmp_path / "e2e.db", "-f", str(controller_file)
        )
        try:
            output = controller.stdout()
            admin = printed_token(output, "admin token")
            added = cli(
                tmp_path,
                *("repo", "add", "acme/app", "--forge", "github", "--url", forge_url),
                *("--token-file", str(tmp_path / "token.txt")),
                *("--clone-url", f"{git_url}/app.git"),
                *("--webhook-secret-file", str(tmp_path / "secret.txt")),
                *("--controller", url),
                token=admin,
            )
            assert added.returncode == 0, added.stderr
            worker = Process(
                tmp_path,
                "worker",
                [
                    *("worker", "run", "--name", "forge-e2e-" + uuid.uuid4().hex[:6]),
                    *("--token", printed_token(output, "registration token")),
                    *("--rpc-endpoint", url),
                ],
            )
            try:
                wait_for(lambda: "registered with" in worker.stderr(), START_TIMEOUT, "Register")
                body = json.dumps(
                    push_payload("acme/app", "main", "0" * 40, sha, "http://unused")
                ).encode()
                headers = signed_headers("github", "push", "delivery-1", body, SECRET)
                answer = httpx.post(f"{url}/webhooks/github", content=body, headers=headers)
                assert answer.status_code == 201, answer.text
                build_id = answer.json()["build"]
                wait_for(
                    lambda: state.statuses_of("cirrus-ci")[-1:] == ["success"],
                    60,
                    "the build's success status",
                )
            finally:
                assert worker.terminate() == 0, worker.stderr()
            auth = {"Authorization": f"Bearer {admin}"}
            build = httpx.get(f"{url}/api/v1/builds/{build_id}", headers=auth).json()
            task_id = build["tasks"][0]["id"]
            log = httpx.get(f"{url}/api/v1/tasks/{task_id}/logs/main", headers=auth).text
            assert "hello from the commit" in log
            assert state.statuses_of("cirrus-ci/check")[0] == "pending"
            assert state.statuses_of("cirrus-ci/check")[-1] == "success"
            links = {s["target_url"] for s in state.statuses if s["context"] == "cirrus-ci/check"}
            assert links == {f"https://ci.example.test/tasks/{task_id}"}
        finally:
            controller.terminate()
