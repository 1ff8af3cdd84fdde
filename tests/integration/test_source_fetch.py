"""The worker host's source fetch against real git servers (``git daemon``, ``git http-backend``
with token auth) and a real HTTP server for snapshots, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from adapters.source_fetch import fetch_git, fetch_snapshot
from domain.clone import CloneError, SnapshotSource, git_source
from tests.integration.git_servers import Repo, git, git_daemon, http_backend
from tests.integration.http_stub import StubHandler, serve_http

pytestmark = pytest.mark.integration

TOKEN = "tok-5ecret-value"
FAST_RETRIES = {"attempts": 3, "initial_wait": 0.01, "max_wait": 0.02}


class Collected:
    """An output sink keeping what was written."""

    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data

    @property
    def text(self) -> str:
        return self.data.decode()


def clone(env: dict[str, str], into: Path, token: str = "") -> tuple[str, Collected]:
    """Run ``fetch_git`` for ``env`` into ``into``; return HEAD and the output."""
    output = Collected()
    if token:
        env = {**env, "CIRRUS_REPO_CLONE_TOKEN": token}
    head = asyncio.run(fetch_git(git_source(env), into, token, output, retry_options=FAST_RETRIES))
    return head, output


def failed_clone(env: dict[str, str], into: Path, token: str = "") -> tuple[str, Collected]:
    """Run ``fetch_git`` expecting a ``CloneError``; return its message and the output."""
    output = Collected()
    if token:
        env = {**env, "CIRRUS_REPO_CLONE_TOKEN": token}
    with pytest.raises(CloneError) as caught:
        asyncio.run(fetch_git(git_source(env), into, token, output, retry_options=FAST_RETRIES))
    return str(caught.value), output


def test_the_clone_is_the_exact_commit_even_shallow_after_the_branch_moved_on(
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "srv", "app")
    first = repo.commit({"f.txt": "first\n"}, "first")
    repo.commit({"f.txt": "second\n"}, "second")
    with git_daemon(tmp_path / "srv") as base:
        env = {
            "CIRRUS_REPO_CLONE_URL": f"{base}/app.git",
            "CIRRUS_BRANCH": "main",
            "CIRRUS_CHANGE_IN_REPO": first,
        }
        head, output = clone(env, tmp_path / "full")
        shallow_head, shallow = clone({**env, "CIRRUS_CLONE_DEPTH": "1"}, tmp_path / "shallow")
    assert head == first == shallow_head
    assert (tmp_path / "full" / "f.txt").read_text() == "first\n"
    assert "Hard resetting to" in output.text
    assert "Successfully cloned!" in output.text
    assert (tmp_path / "shallow" / "f.txt").read_text() == "first\n"
    assert "Limiting clone depth to 1!" in shallow.text
    assert git(tmp_path / "shallow", "rev-parse", "--is-shallow-repository") == "true"
    assert git(tmp_path / "full", "rev-parse", "--is-shallow-repository") == "false"


def test_a_depth_of_one_gives_one_commit_of_history(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "srv", "app")
    repo.commit({"a": "1"}, "one")
    tip = repo.commit({"a": "2"}, "two")
    with git_daemon(tmp_path / "srv") as base:
        env = {"CIRRUS_REPO_CLONE_URL": f"{base}/app.git", "CIRRUS_CHANGE_IN_REPO": tip}
        clone({**env, "CIRRUS_CLONE_DEPTH": "1"}, tmp_path / "one")
        clone(env, tmp_path / "all")
    assert git(tmp_path / "one", "rev-list", "--count", "HEAD") == "1"
    assert git(tmp_path / "all", "rev-list", "--count", "HEAD") == "2"


def test_tags_come_only_with_clone_tags_true(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "srv", "app")
    repo.commit({"a": "1"}, "one")
    repo.tag("v1.0")
    with git_daemon(tmp_path / "srv") as base:
        env = {"CIRRUS_REPO_CLONE_URL": f"{base}/app.git", "CIRRUS_BRANCH": "main"}
        clone(env, tmp_path / "plain")
        clone({**env, "CIRRUS_CLONE_TAGS": "true"}, tmp_path / "tags")
        _, tag_output = clone({**env, "CIRRUS_TAG": "v1.0"}, tmp_path / "tag")
    assert git(tmp_path / "plain", "tag") == ""
    assert git(tmp_path / "tags", "tag") == "v1.0"
    assert "Cloning refs/tags/v1.0..." in tag_output.text


def test_submodules_are_checked_out_only_with_clone_submodules_true(tmp_path: Path) -> None:
    sub = Repo(tmp_path / "srv", "lib")
    sub.commit({"lib.txt": "library\n"}, "lib")
    app = Repo(tmp_path / "srv", "app")
    with git_daemon(tmp_path / "srv") as base:
        git(app.work, "submodule", "add", "--quiet", f"{base}/lib.git", "vendor/lib")
        app.commit({"main.txt": "app\n"}, "with a submodule")
        env = {"CIRRUS_REPO_CLONE_URL": f"{base}/app.git", "CIRRUS_BRANCH": "main"}
        clone(env, tmp_path / "without")
        _, output = clone({**env, "CIRRUS_CLONE_SUBMODULES": "true"}, tmp_path / "with")
    assert not (tmp_path / "without" / "vendor" / "lib" / "lib.txt").exists()
    assert (tmp_path / "with" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"
    assert "Updating submodules..." in output.text


def test_a_pull_request_is_fetched_from_its_head_ref(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "srv", "app")
    repo.commit({"a": "base\n"}, "base")
    change = repo.commit({"a": "change\n"}, "change", branch="feature")
    git(repo.work, "push", "--quiet", "origin", "HEAD:refs/pull/7/head")
    with git_daemon(tmp_path / "srv") as base:
        env = {
            "CIRRUS_REPO_CLONE_URL": f"{base}/app.git",
            "CIRRUS_PR": "7",
            "CIRRUS_BRANCH": "pull/7",
            "CIRRUS_CHANGE_IN_REPO": change,
        }
        head, output = clone(env, tmp_path / "pr")
    assert head == change
    assert (tmp_path / "pr" / "a").read_text() == "change\n"
    assert "Fetching +refs/pull/7/head:refs/remotes/origin/pull/7..." in output.text


def test_a_private_repository_clones_with_the_token_and_stores_it_nowhere(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "srv", "private")
    tip = repo.commit({"secret.txt": "private\n"}, "private")
    with http_backend(tmp_path / "srv", TOKEN) as base:
        url = f"{base}/private.git"
        env = {"CIRRUS_REPO_CLONE_URL": url, "CIRRUS_CHANGE_IN_REPO": tip}
        head, output = clone(env, tmp_path / "clone", token=TOKEN)
    assert head == tip
    assert (tmp_path / "clone" / "secret.txt").read_text() == "private\n"
    assert git(tmp_path / "clone", "remote", "get-url", "origin") == url
    found = subprocess.run(
        ["grep", "-r", "-l", TOKEN, str(tmp_path / "clone")], capture_output=True, text=True
    )
    assert found.stdout == ""
    assert TOKEN not in output.text


def test_a_wrong_token_fails_at_once_with_gits_message_and_without_the_token(
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "srv", "private")
    repo.commit({"a": "1"}, "one")
    wrong = "wrong-" + TOKEN
    with http_backend(tmp_path / "srv", TOKEN) as base:
        env = {"CIRRUS_REPO_CLONE_URL": f"{base}/private.git"}
        message, output = failed_clone(env, tmp_path / "clone", token=wrong)
        no_token, _ = failed_clone(env, tmp_path / "anonymous")
    assert "git clone failed: fatal: Authentication failed" in message
    assert wrong not in message
    assert wrong not in output.text
    assert "Retrying" not in output.text
    assert "git clone failed:" in no_token
    assert "terminal prompts disabled" in no_token


def test_network_errors_are_retried_and_a_bad_commit_is_not(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "srv", "app")
    repo.commit({"a": "1"}, "one")
    with git_daemon(tmp_path / "srv") as base:
        pass  # the daemon is gone: its port now refuses connections
    message, output = failed_clone({"CIRRUS_REPO_CLONE_URL": f"{base}/app.git"}, tmp_path / "a")
    assert output.text.count("Retrying after a network error...") == 2
    assert "Connection refused" in message or "unable to connect" in message
    with git_daemon(tmp_path / "srv") as base:
        env = {"CIRRUS_REPO_CLONE_URL": f"{base}/app.git", "CIRRUS_CHANGE_IN_REPO": "f" * 40}
        message, output = failed_clone(env, tmp_path / "b")
    assert "Retrying" not in output.text
    assert f"Fetching {'f' * 40}..." in output.text
    assert "git fetch failed:" in message


def snapshot_archive(files: dict[str, bytes]) -> bytes:
    """A ``.tar.gz`` of ``files`` (names may be hostile)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


HEADERS = {
    "registration-token": "reg",
    "session-token": "sess",
    "worker-name": "w1",
    "org.cirruslabs.task-id": "task-1",
    "org.cirruslabs.client-secret": "client-1",
}


def snapshot_server(archives: dict[str, bytes], failures: list[int]) -> type[StubHandler]:
    """Serves ``/api/v1/snapshots/<id>`` to requests with ``HEADERS``; answers the statuses in
    ``failures`` first, one per request."""

    class Handler(StubHandler):
        def do_GET(self) -> None:
            if failures:
                self.reply(failures.pop(0), "text/plain", b"try later")
                return
            snapshot_id = self.path.removeprefix("/api/v1/snapshots/")
            if any(self.headers.get(k) != v for k, v in HEADERS.items()):
                self.reply(401, "text/plain", b"unauthorized")
            elif snapshot_id not in archives:
                self.reply(404, "text/plain", b"no such snapshot")
            else:
                self.reply(200, "application/gzip", archives[snapshot_id])

    return Handler


def download(url: str, archive_id: str, sha256: str, into: Path, **extra: str) -> Collected:
    """Run ``fetch_snapshot``; return its output."""
    output = Collected()
    headers = {**HEADERS, **extra}
    source = SnapshotSource(archive_id, sha256)
    asyncio.run(fetch_snapshot(source, url, headers, into, output, initial_wait=0.01, attempts=3))
    return output


def test_a_snapshot_is_downloaded_with_the_task_headers_checked_and_unpacked(
    tmp_path: Path,
) -> None:
    archive = snapshot_archive({"src/test_x.py": b"def test(): pass\n", "README": b"hi\n"})
    sha = hashlib.sha256(archive).hexdigest()
    failures = [503]
    with serve_http(snapshot_server({"snap1": archive}, failures)) as url:
        output = download(url, "snap1", sha, tmp_path / "ok")
        with pytest.raises(CloneError, match="HTTP 401"):
            download(url, "snap1", sha, tmp_path / "denied", **{"session-token": "other"})
        with pytest.raises(CloneError, match="is corrupt"):
            download(url, "snap1", "0" * 64, tmp_path / "corrupt")
    assert (tmp_path / "ok" / "src" / "test_x.py").read_text() == "def test(): pass\n"
    assert "Retrying the download..." in output.text
    assert "Unpacked 2 files of snapshot snap1." in output.text
    assert not (tmp_path / "corrupt").exists()


def test_a_snapshot_member_outside_the_directory_is_refused(tmp_path: Path) -> None:
    archive = snapshot_archive({"../escaped.txt": b"x"})
    sha = hashlib.sha256(archive).hexdigest()
    with (
        serve_http(snapshot_server({"evil": archive}, [])) as url,
        pytest.raises(CloneError, match="cannot unpack the snapshot"),
    ):
        download(url, "evil", sha, tmp_path / "into")
    assert not (tmp_path / "escaped.txt").exists()
