"""``cirrus build submit`` (a real ``cirrus`` process) from a git checkout with an uncommitted
change, against a real controller: the snapshot is uploaded, the build records its source, and
the stored snapshot holds the change."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.integration.child_environment import child_environment
from tests.integration.controller.conftest import ADMIN_TOKEN, RunningController
from tests.integration.git_repos import commit_all, git, isolate_git, new_repository, write

pytestmark = pytest.mark.integration

CIRRUS = Path(sys.executable).with_name("cirrus")
YAML = "test_task:\n  script: cat README.md\n"


async def cirrus(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cirrus ARGS`` to its end (in a thread: the controller serves on this loop)."""
    env = {**child_environment(), "CIRRUS_TOKEN": ADMIN_TOKEN}
    return await asyncio.to_thread(
        subprocess.run,
        [str(CIRRUS), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


async def test_a_submitted_checkout_with_an_uncommitted_change_is_built_from_its_snapshot(
    controller: RunningController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(tmp_path, monkeypatch)
    repo = new_repository(tmp_path / "widget")
    git(repo, "remote", "add", "origin", "git@forge.example:acme/widget.git")
    write(repo / ".cirrus.yml", YAML)
    commit = commit_all(repo, "Print the readme")
    write(repo / "README.md", "uncommitted change\n")

    result = await cirrus(repo, "build", "submit", "--controller", controller.url, "--json")
    assert result.returncode == 0, result.stderr
    submitted = json.loads(result.stdout)
    source = submitted["source"]
    assert source["repository"] == "acme/widget"
    assert (source["branch"], source["commit"]) == ("main", commit)
    assert source["changeTitle"] == "Print the readme"

    build = await controller.build(submitted["id"])
    assert build["source"] == source
    response = await controller.api("GET", f"/api/v1/snapshots/{source['snapshot']}")
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == source["snapshotSha256"]
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        readme = archive.extractfile("README.md")
        assert readme is not None
        assert readme.read() == b"uncommitted change\n"

    shown = await cirrus(repo, "build", "status", submitted["id"], "--controller", controller.url)
    assert shown.returncode == 0, shown.stderr
    assert (
        f"  source: acme/widget, branch main, commit {commit[:7]} 'Print the readme', "
        f"snapshot {source['snapshot']}"
    ) in shown.stdout.splitlines()
