"""``cirrus repo add|list`` against a real ``cirrus controller run``, and the clone token a task
of the registered repository gets through ``InitialCommands`` (a plain Twirp JSON client, so
that the test sees ``secretsToMask`` on the wire). Every process runs in its own session on
127.0.0.1 and is stopped by its PID.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_controller_cli import cli, printed_token, start_controller
from tests.integration.test_secret_cli import Json, twirp

pytestmark = pytest.mark.integration

TOKEN = "ghp_forge-token-of-acme-app-for-the-cli-test"
UNREACHABLE = "http://127.0.0.1:9"


def initial_commands_of_next_task(url: str, registration_token: str, worker: str) -> Json:
    """Register ``worker``, take the queued task, and return its ``InitialCommands`` answer."""
    info = {"labels": {"name": worker, "os": "linux", "arch": "amd64"}}
    with httpx.Client(base_url=url, timeout=30) as http:
        body = {"registrationToken": registration_token, "workerInfo": info}
        session = twirp(http, "CirrusWorkersService", "Register", body)["sessionToken"]
        headers = {
            "registration-token": registration_token,
            "session-token": session,
            "worker-name": worker,
        }
        poll = {"workerInfo": info, "runningTasks": []}
        [task] = twirp(http, "CirrusWorkersService", "Poll", poll, **headers)["tasksToStart"]
        scoped = {
            **headers,
            "org.cirruslabs.task-id": task["taskId"],
            "org.cirruslabs.client-secret": task["clientSecret"],
        }
        twirp(http, "CirrusWorkersService", "TaskStarted", {}, **scoped)
        stamp = {"localTimestamp": str(int(time.time()))}
        return twirp(http, "CirrusCIService", "InitialCommands", stamp, **scoped)


def token_file(tmp_path: Path, text: str = TOKEN + "\n") -> Path:
    """A file holding the forge token as an editor writes it (with a newline)."""
    path = tmp_path / "forge-token"
    path.write_text(text)
    return path


def repo_add(tmp_path: Path, url: str, admin: str | None, *extra: str) -> list[str]:
    """The arguments of ``cirrus repo add Acme/App`` on the public GitHub."""
    arguments = [
        *("repo", "add", "Acme/App", "--forge", "github", "--url", "https://api.github.com"),
        *("--token-file", str(token_file(tmp_path)), "--controller", url, *extra),
    ]
    return arguments if admin is None else [*arguments, "--token", admin]


def test_repo_add_prints_a_generated_webhook_secret_once_and_nothing_keeps_a_plain_credential(
    tmp_path: Path,
) -> None:
    database = tmp_path / "repositories.db"
    process, url = start_controller(tmp_path, database)
    try:
        admin = printed_token(process.stdout(), "admin token")
        added = cli(tmp_path, *repo_add(tmp_path, url, admin))
        again = cli(tmp_path, *repo_add(tmp_path, url, admin))
        listed = cli(tmp_path, "repo", "list", "--controller", url, token=admin)
        as_json = cli(tmp_path, "repo", "list", "--controller", url, "--json", token=admin)
    finally:
        assert process.terminate() == 0

    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[:2] == [
        "repository Acme/App registered: github, API https://api.github.com",
        "clone URL: https://github.com/Acme/App.git",
    ]
    secret = re.fullmatch(r"webhook secret: ([0-9a-f]{64})", lines[2])
    assert secret is not None, added.stdout
    webhook_secret = secret.group(1)

    assert again.returncode == 0, again.stderr
    assert "repository Acme/App updated (it was registered already)" in again.stdout
    assert "webhook secret: unchanged" in again.stdout
    assert webhook_secret not in again.stdout

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(
        "Acme/App: github, API https://api.github.com; clone URL https://github.com/Acme/App.git;"
        " default branch unknown; added "
    )
    assert as_json.returncode == 0, as_json.stderr
    [entry] = json.loads(as_json.stdout)["repositories"]
    assert set(entry) == {"name", "forge", "url", "cloneUrl", "createdAt", "updatedAt"}

    everything_kept = (
        b"".join(path.read_bytes() for path in tmp_path.glob(database.name + "*"))
        + (process.stdout() + process.stderr() + listed.stdout + as_json.stdout).encode()
    )
    assert TOKEN.encode() not in everything_kept
    assert webhook_secret.encode() not in everything_kept
    assert b"ENCRYPTED[v1:" in everything_kept  # what the database keeps instead


def test_a_task_of_the_registered_repository_gets_the_clone_token_and_others_do_not(
    tmp_path: Path,
) -> None:
    config = tmp_path / ".cirrus.yml"
    config.write_text("task:\n  name: build\n  script: echo hi\n")
    process, url = start_controller(tmp_path, tmp_path / "tasks.db")
    try:
        admin = printed_token(process.stdout(), "admin token")
        registration = printed_token(process.stdout(), "registration token")
        assert cli(tmp_path, *repo_add(tmp_path, url, admin)).returncode == 0
        submit = ("build", "submit", str(config), "--controller", url, "--json")
        ours = cli(tmp_path, *submit, "-e", "CIRRUS_REPO_FULL_NAME=acme/app", token=admin)
        assert ours.returncode == 0, ours.stderr
        granted = initial_commands_of_next_task(url, registration, "ours")
        theirs = cli(tmp_path, *submit, "-e", "CIRRUS_REPO_FULL_NAME=acme/fork", token=admin)
        assert theirs.returncode == 0, theirs.stderr
        refused = initial_commands_of_next_task(url, registration, "theirs")
        own_token = cli(tmp_path, *submit, "-e", f"CIRRUS_REPO_CLONE_TOKEN={TOKEN}", token=admin)
    finally:
        assert process.terminate() == 0

    assert granted["environment"]["CIRRUS_REPO_CLONE_TOKEN"] == TOKEN
    assert TOKEN in granted["secretsToMask"]
    assert "CIRRUS_REPO_CLONE_TOKEN" not in refused["environment"]
    assert TOKEN not in json.dumps(refused)
    assert (own_token.returncode, own_token.stdout) == (1, "")
    assert own_token.stderr.startswith(
        "cirrus: environment: CIRRUS_REPO_CLONE_TOKEN is set by the controller"
    )
    assert TOKEN not in process.stdout() + process.stderr()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("name", "acme"), "cirrus: repository 'acme' is not OWNER/NAME"),
        (("token", ""), "cirrus: --token-file: {file} is empty"),
        (("token", "one\ntwo\n"), "cirrus: --token-file: {file} holds more than one line"),
        (("url", "https://user@api.github.com"), "cirrus: --url: 'https://user@api.github.com'"),
        (("forge", "gitlab"), "Error: Invalid value for '--forge'"),
    ],
)
def test_a_usage_error_is_exit_2_on_one_line_before_any_call(
    tmp_path: Path, change: tuple[str, str], error: str
) -> None:
    key, value = change
    arguments = {"name": "acme/app", "forge": "github", "url": "https://api.github.com"}
    file = token_file(tmp_path, value if key == "token" else TOKEN)
    arguments.update({key: value} if key != "token" else {})
    result = cli(
        tmp_path,
        *("repo", "add", arguments["name"], "--forge", arguments["forge"]),
        *("--url", arguments["url"], "--token-file", str(file), "--controller", UNREACHABLE),
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(error.format(file=file)), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_missing_token_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    result = cli(
        tmp_path,
        *("repo", "add", "acme/app", "--forge", "gitea", "--url", "https://g.example/api/v1"),
        *("--token-file", str(missing), "--controller", UNREACHABLE),
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr == f"cirrus: --token-file: cannot read {missing}: No such file or directory\n"
    )
