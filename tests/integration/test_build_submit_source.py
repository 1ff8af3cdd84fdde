"""``cirrus build submit`` sends its project's source: a snapshot of the working tree (uploaded
before the build), or with ``--remote`` the pushed commit; ``build status`` shows it. A real
HTTP server on 127.0.0.1 records what arrives; the repositories are real git repositories."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result

from app.cli import cli
from tests.integration.git_repos import commit_all, git, isolate_git, new_repository, write
from tests.integration.http_stub import StubHandler, serve_http

pytestmark = pytest.mark.integration

YAML = "task:\n  name: test\n  script: cat README.md\n"


class Controller(StubHandler):
    """Stores uploaded snapshots and submitted builds; answers as the controller's API does."""

    uploads: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    builds: ClassVar[list[dict[str, Any]]] = []
    accepts_snapshots: ClassVar[bool] = True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, status: int, document: object) -> None:
        self.reply(status, "application/json", json.dumps(document).encode())

    def do_POST(self) -> None:  # the name http.server dispatches to
        body = self._body()
        if self.path == "/api/v1/snapshots" and Controller.accepts_snapshots:
            Controller.uploads.append((dict(self.headers.items()), body))
            digest = hashlib.sha256(body).hexdigest()
            self._json(201, {"id": f"snap{len(self.uploads)}", "sha256": digest, "size": len(body)})
        elif self.path == "/api/v1/builds":
            Controller.builds.append(json.loads(body))
            self._json(201, self._build())
        else:
            self._json(404, {"error": f"no route {self.path}"})

    def do_GET(self) -> None:  # the name http.server dispatches to
        if self.path == "/api/v1/builds/b1" and Controller.builds:
            self._json(200, self._build())
        else:
            self._json(404, {"error": "no such build"})

    def _build(self) -> dict[str, Any]:
        build: dict[str, Any] = {"id": "b1", "status": "EXECUTING", "tasks": []}
        if "source" in Controller.builds[-1]:
            build["source"] = Controller.builds[-1]["source"]
        return build


@pytest.fixture
def controller_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    isolate_git(tmp_path, monkeypatch)
    Controller.uploads = []
    Controller.builds = []
    Controller.accepts_snapshots = True
    with serve_http(Controller) as url:
        yield url


def cirrus(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--controller", url, "--token", "t"])


def archive_files(data: bytes) -> dict[str, bytes]:
    """The regular files of an uploaded ``.tar.gz`` with their contents."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            if member.isfile() and handle is not None:
                files[member.name] = handle.read()
    return files


def checkout_with_a_change(tmp_path: Path) -> tuple[Path, str]:
    """A checkout of ``acme/widget`` with a committed ``.cirrus.yml`` and an uncommitted change
    of ``README.md``, an untracked file and an ignored one; return it and HEAD's commit."""
    repo = new_repository(tmp_path / "widget")
    git(repo, "remote", "add", "origin", "https://forge.example/acme/widget.git")
    write(repo / ".cirrus.yml", YAML)
    write(repo / ".gitignore", "*.log\n")
    commit = commit_all(repo, "Test the readme")
    write(repo / "README.md", "uncommitted change\n")
    write(repo / "notes.txt", "untracked\n")
    write(repo / "debug.log", "ignored\n")
    return repo, commit


def test_a_checkout_is_uploaded_as_a_snapshot_with_its_uncommitted_change(
    controller_url: str, tmp_path: Path
) -> None:
    repo, commit = checkout_with_a_change(tmp_path)
    result = cirrus(controller_url, "build", "submit", str(repo / ".cirrus.yml"))
    assert result.exit_code == 0, result.output
    [(headers, data)] = Controller.uploads
    assert headers["Content-Type"] == "application/gzip"
    assert archive_files(data) == {
        ".cirrus.yml": YAML.encode(),
        ".gitignore": b"*.log\n",
        "README.md": b"uncommitted change\n",
        "notes.txt": b"untracked\n",
    }
    [build] = Controller.builds
    assert build["config"] == YAML
    assert build["source"] == {
        "repository": "acme/widget",
        "branch": "main",
        "commit": commit,
        "changeTitle": "Test the readme",
        "changeMessage": "Test the readme",
        "changeAuthor": "Ada Lovelace",
        "defaultBranch": "main",
        "snapshot": "snap1",
        "snapshotSha256": hashlib.sha256(data).hexdigest(),
    }
    assert f"source: acme/widget, branch main, commit {commit[:7]} 'Test the readme', " in (
        result.output
    )
    assert "snapshot snap1" in result.output


def test_a_file_in_a_subdirectory_snapshots_the_whole_repository(
    controller_url: str, tmp_path: Path
) -> None:
    repo, _ = checkout_with_a_change(tmp_path)
    write(repo / "ci" / ".cirrus.yml", YAML)
    result = cirrus(controller_url, "build", "submit", str(repo / "ci" / ".cirrus.yml"))
    assert result.exit_code == 0, result.output
    [(_, data)] = Controller.uploads
    assert "README.md" in archive_files(data)
    assert "ci/.cirrus.yml" in archive_files(data)


def test_outside_git_the_build_has_no_source_and_nothing_is_uploaded(
    controller_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "plain"
    write(project / ".cirrus.yml", YAML)
    write(project / "README.md", "plain\n")
    args = ["build", "submit", str(project / ".cirrus.yml"), "--json"]
    result = CliRunner().invoke(cli, [*args, "--controller", controller_url, "--token", "t"])
    assert result.exit_code == 0, result.output
    assert Controller.uploads == []
    assert "source" not in Controller.builds[0]
    assert json.loads(result.stdout)["source"] is None


def pushed_checkout(tmp_path: Path) -> tuple[Path, Path, str]:
    """A bare ``acme/widget.git`` and a checkout whose HEAD is pushed; the bare path, the
    checkout and its commit."""
    seed = new_repository(tmp_path / "seed")
    write(seed / ".cirrus.yml", YAML)
    commit_all(seed, "Configure Cirrus")
    bare = tmp_path / "acme" / "widget.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(bare), str(checkout))
    return bare, checkout, git(checkout, "rev-parse", "HEAD")


def test_remote_sends_the_pushed_commit_without_an_upload(
    controller_url: str, tmp_path: Path
) -> None:
    bare, checkout, commit = pushed_checkout(tmp_path)
    result = cirrus(
        controller_url,
        "build",
        "submit",
        str(checkout / ".cirrus.yml"),
        "--remote",
        "--changed-since",
        "HEAD~1",
    )
    assert result.exit_code == 0, result.output
    assert Controller.uploads == []
    source = Controller.builds[0]["source"]
    assert source["cloneUrl"] == str(bare)
    assert source["repository"] == "acme/widget"
    assert (source["branch"], source["commit"]) == ("main", commit)
    assert source["changedFiles"] == [".cirrus.yml"]
    assert "snapshot" not in source


def test_remote_with_a_commit_not_pushed_is_a_one_line_usage_error(
    controller_url: str, tmp_path: Path
) -> None:
    _, checkout, _ = pushed_checkout(tmp_path)
    write(checkout / "local.txt")
    commit = commit_all(checkout, "Not pushed")
    result = cirrus(
        controller_url, "build", "submit", str(checkout / ".cirrus.yml"), "--remote", "origin"
    )
    assert result.exit_code == 2
    assert result.output == (
        f"cirrus: commit {commit[:12]} is not on remote origin: push it first\n"
    )
    assert Controller.uploads == []
    assert Controller.builds == []


def test_build_status_shows_the_source(controller_url: str, tmp_path: Path) -> None:
    repo, commit = checkout_with_a_change(tmp_path)
    assert cirrus(controller_url, "build", "submit", str(repo / ".cirrus.yml")).exit_code == 0
    shown = cirrus(controller_url, "build", "status", "b1")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[1] == (
        f"  source: acme/widget, branch main, commit {commit[:7]} 'Test the readme', snapshot snap1"
    )
    document = json.loads(cirrus(controller_url, "build", "status", "b1", "--json").output)
    assert document["source"]["commit"] == commit
    assert document["source"]["snapshot"] == "snap1"


def test_a_controller_without_snapshots_is_reported_in_one_line_with_the_way_out(
    controller_url: str, tmp_path: Path
) -> None:
    Controller.accepts_snapshots = False
    repo, _ = checkout_with_a_change(tmp_path)
    result = cirrus(controller_url, "build", "submit", str(repo / ".cirrus.yml"))
    assert result.exit_code == 1
    assert result.output == (
        f"cirrus: the controller {controller_url} does not accept snapshots "
        "(POST /api/v1/snapshots: no route /api/v1/snapshots); submit with --remote instead\n"
    )
    assert Controller.builds == []
