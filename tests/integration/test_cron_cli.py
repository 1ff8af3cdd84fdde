"""``cirrus cron add|list`` against a real ``cirrus controller run``: a cron of a registered
repository is added, replaced by name, listed (human and JSON), and refusals are one line with
the documented exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_controller_cli import cli, printed_token, start_controller
from tests.integration.test_repo_cli import repo_add

pytestmark = pytest.mark.integration


def test_a_cron_is_added_replaced_by_name_and_listed_and_refusals_are_one_line(
    tmp_path: Path,
) -> None:
    process, url = start_controller(tmp_path, tmp_path / "crons.db")
    try:
        admin = printed_token(process.stdout(), "admin token")
        assert cli(tmp_path, *repo_add(tmp_path, url, admin)).returncode == 0

        def cron(*args: str) -> tuple[int, str, str]:
            done = cli(tmp_path, "cron", *args, "--controller", url, token=admin)
            return done.returncode, done.stdout, done.stderr

        nightly = ["--repository", "acme/app", "--branch", "main"]
        added = cron("add", "nightly", *nightly, "--expression", "0 3 * * *")
        replaced = cron("add", "nightly", *nightly, "--expression", "30 4 * * 1")
        listed = cron("list")
        as_json = cron("list", "--json")
        unregistered = cron(
            "add",
            "x",
            "--repository",
            "acme/other",
            "--branch",
            "main",
            "--expression",
            "* * * * *",
        )
        bad_expression = cron("add", "x", *nightly, "--expression", "every night")
        bad_name = cron(
            "add", "x", "--repository", "no-slash", "--branch", "main", "--expression", "0 3 * * *"
        )
    finally:
        assert process.terminate() == 0

    assert added[0] == 0, added[2]
    assert added[1].startswith("cron nightly of Acme/App: branch main, '0 3 * * *', next run ")
    assert replaced[0] == 0, replaced[2]
    [line] = listed[1].splitlines()
    assert "'30 4 * * 1'" in line
    [entry] = json.loads(as_json[1])["crons"]
    assert (entry["name"], entry["branch"], entry["expression"]) == (
        "nightly",
        "main",
        "30 4 * * 1",
    )
    assert entry["nextRun"].endswith("Z")
    # The controller refuses: exit 1, one line naming the problem.
    assert unregistered[0] == 1
    assert unregistered[2].count("\n") == 1
    assert "not registered" in unregistered[2]
    assert bad_expression[0] == 1
    assert bad_expression[2].count("\n") == 1
    # A malformed repository name is a usage error: exit 2, one line, no controller call.
    assert bad_name[0] == 2
    assert bad_name[2].count("\n") == 1
    assert "--repository" in bad_name[2]
