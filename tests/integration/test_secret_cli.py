"""``cirrus secret encrypt`` against a real ``cirrus controller run``: the text it prints reaches
a task's environment, decrypted, through ``InitialCommands``, also after a controller restart.

The worker side is a plain Twirp JSON client, so that the test sees ``secretsToMask`` on the
wire. Every process runs in its own session on 127.0.0.1 and is stopped by its PID.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_controller_cli import (
    CIRRUS,
    clean_environment,
    printed_token,
    start_controller,
)

pytestmark = pytest.mark.integration

PACKAGE = "org.cirruslabs.ci.services.cirruscigrpc"
FORMAT = re.compile(r"ENCRYPTED\[v1:[A-Za-z0-9_-]+\]")
SECRET = "pa$$word with spaces"

Json = dict[str, Any]


def secret_cli(
    tmp_path: Path, *args: str, token: str | None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``cirrus secret ...`` to its end with ``stdin`` as its input."""
    env = clean_environment(tmp_path)
    if token is not None:
        env["CIRRUS_TOKEN"] = token
    return subprocess.run(
        [str(CIRRUS), "secret", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def twirp(http: httpx.Client, service: str, method: str, body: object, **headers: str) -> Json:
    """One Twirp JSON call that must succeed."""
    response = http.post(
        f"/twirp/{PACKAGE}.{service}/{method}",
        json=body,
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


def initial_commands_of_next_task(url: str, registration_token: str) -> Json:
    """Register a worker, take the queued task, and return its ``InitialCommands`` answer."""
    info = {"labels": {"name": "secret-worker", "os": "linux", "arch": "amd64"}}
    with httpx.Client(base_url=url, timeout=30) as http:
        body = {"registrationToken": registration_token, "workerInfo": info}
        session = twirp(http, "CirrusWorkersService", "Register", body)["sessionToken"]
        worker = {
            "registration-token": registration_token,
            "session-token": session,
            "worker-name": "secret-worker",
        }
        poll = {"workerInfo": info, "runningTasks": []}
        [task] = twirp(http, "CirrusWorkersService", "Poll", poll, **worker)["tasksToStart"]
        scoped = {
            **worker,
            "org.cirruslabs.task-id": task["taskId"],
            "org.cirruslabs.client-secret": task["clientSecret"],
        }
        twirp(http, "CirrusWorkersService", "TaskStarted", {}, **scoped)
        stamp = {"localTimestamp": str(int(time.time()))}
        return twirp(http, "CirrusCIService", "InitialCommands", stamp, **scoped)


def test_an_encrypted_value_survives_a_restart_and_reaches_the_task_decrypted_and_masked(
    tmp_path: Path,
) -> None:
    database = tmp_path / "secrets.db"
    first, url = start_controller(tmp_path, database)
    try:
        admin = printed_token(first.stdout(), "admin token")
        registration = printed_token(first.stdout(), "registration token")
        piped = secret_cli(
            tmp_path,
            "encrypt",
            "--repository",
            "Acme/App",
            "--controller",
            url,
            token=admin,
            stdin=SECRET + "\n",
        )
        argument = secret_cli(
            tmp_path, "encrypt", "plain", "--controller", url, "--json", token=admin
        )
    finally:
        assert first.terminate() == 0
    assert piped.returncode == 0, piped.stderr
    assert FORMAT.fullmatch(piped.stdout.removesuffix("\n"))
    assert argument.returncode == 0, argument.stderr
    unbound = json.loads(argument.stdout)["encrypted"]
    assert FORMAT.fullmatch(unbound)

    config = tmp_path / ".cirrus.yml"
    bound = piped.stdout.strip()
    config.write_text(
        f"task:\n  name: deploy\n  env:\n    TOKEN: {bound}\n    OTHER: {unbound}\n"
        "  script: echo hi\n"
    )
    second, url = start_controller(tmp_path, database)
    try:
        submitted = subprocess.run(
            [
                *(str(CIRRUS), "build", "submit", str(config), "--controller", url, "--json"),
                *("-e", "CIRRUS_REPO_FULL_NAME=acme/app"),
            ],
            capture_output=True,
            text=True,
            env={**clean_environment(tmp_path), "CIRRUS_TOKEN": admin},
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert submitted.returncode == 0, submitted.stderr
        commands = initial_commands_of_next_task(url, registration)
    finally:
        assert second.terminate() == 0

    assert commands["environment"]["TOKEN"] == SECRET
    assert commands["environment"]["OTHER"] == "plain"
    assert sorted(commands["secretsToMask"]) == sorted([SECRET, "plain"])


def test_refusals_are_one_line_with_the_documented_exit_codes(tmp_path: Path) -> None:
    process, url = start_controller(tmp_path, tmp_path / "refusals.db")
    try:
        admin = printed_token(process.stdout(), "admin token")
        empty = secret_cli(tmp_path, "encrypt", "--controller", url, token=admin, stdin="\n")
        no_token = secret_cli(tmp_path, "encrypt", "x", "--controller", url, token=None)
        blank = secret_cli(
            tmp_path, "encrypt", "x", "--repository", "a b/c", "--controller", url, token=admin
        )
    finally:
        assert process.terminate() == 0

    assert (empty.returncode, empty.stdout) == (2, "")
    assert empty.stderr == "cirrus: the value to encrypt is empty\n"
    assert (no_token.returncode, no_token.stdout) == (1, "")
    assert no_token.stderr.count("\n") == 1
    assert "admin token" in no_token.stderr
    assert (blank.returncode, blank.stdout) == (1, "")
    assert blank.stderr.count("\n") == 1
    assert "must not contain blanks" in blank.stderr
