"""Cache archives (tar + zstd) and the content digest, on real files; the artifact download of
``cirrus run --artifacts-dir`` against a stub of the controller's artifact API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adapters.artifact_download import download_task_artifacts
from adapters.cache_archive import CacheArchiveError, read_archive, tree_digest, write_archive
from tests.integration.http_stub import StubHandler, serve_http

pytestmark = pytest.mark.integration


def make_tree(root: Path) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "sub" / "a.txt").write_text("alpha\n")
    (root / "run.sh").write_text("echo hi\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("/usr/bin/python3", root / "python")  # absolute, as in a virtualenv


def test_an_archive_restores_files_modes_and_absolute_symlinks_and_the_digest_is_equal(
    tmp_path: Path,
) -> None:
    source, target, archive = tmp_path / "src", tmp_path / "dst", str(tmp_path / "c.tar.zst")
    make_tree(source)

    size = write_archive(str(source), ["."], archive)
    files = read_archive(archive, str(target))

    assert size == os.path.getsize(archive) > 0
    assert files == 2
    assert (target / "pkg" / "sub" / "a.txt").read_text() == "alpha\n"
    assert os.access(target / "run.sh", os.X_OK)
    assert os.readlink(target / "python") == "/usr/bin/python3"
    assert tree_digest(str(target), ["."]) == tree_digest(str(source), ["."])


def test_the_digest_ignores_times_and_sees_content_and_new_files(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = tree_digest(str(tmp_path), ["."])
    os.utime(tmp_path / "run.sh", (1, 1))
    touched = tree_digest(str(tmp_path), ["."])
    (tmp_path / "pkg" / "sub" / "a.txt").write_text("beta\n")
    changed = tree_digest(str(tmp_path), ["."])
    (tmp_path / "new").write_text("")
    added = tree_digest(str(tmp_path), ["."])

    assert before == touched
    assert len({touched, changed, added}) == 3


def test_a_corrupt_archive_is_a_cache_archive_error(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.zst"
    archive.write_bytes(b"not zstd at all")

    with pytest.raises(CacheArchiveError, match="cannot unpack the cache archive"):
        read_archive(str(archive), str(tmp_path / "out"))


def file_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def test_artifacts_are_copied_to_task_name_artifact_name_and_path(tmp_path: Path) -> None:
    listing = {
        "artifacts": [
            {"name": "junit", "path": "out/r.xml"},
            {"name": "junit", "path": "../escape.txt"},
            {"name": "../bad", "path": "x.txt"},
        ]
    }

    class Api(StubHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != "Bearer admin":
                self.reply(401, "text/plain", b"")
            elif self.path == "/api/v1/tasks/7/artifacts":
                self.reply(200, "application/json", json.dumps(listing).encode())
            elif self.path == "/api/v1/tasks/7/artifacts/junit/out/r.xml":
                self.reply(200, "application/xml", b"<r/>")
            else:
                self.reply(404, "text/plain", b"")

    with serve_http(Api) as url:
        copied = await download_task_artifacts(url, "admin", "7", "tests", tmp_path / "dir")
        unsafe = await download_task_artifacts(url, "admin", "7", "../x", tmp_path / "dir")

    assert (copied, unsafe) == (1, 0)
    assert (tmp_path / "dir" / "tests" / "junit" / "out" / "r.xml").read_bytes() == b"<r/>"
    assert file_names(tmp_path) == ["r.xml"]  # nothing escaped the directory
