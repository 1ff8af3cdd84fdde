"""``build submit``'s source: what it reads of the project and what it uploads, against a
hand-written workspace and controller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from app.submit_source import PreparedSource, prepare_source, send_source
from domain.controller_calls import ResourceNotFound, UnexpectedAnswer
from domain.source import BuildSource

GIT_SOURCE = BuildSource(repository="me/app", branch="main", commit="a" * 40)


class FakeWorkspace:
    """A project at ``top`` (None: not a git repository) holding ``files``."""

    def __init__(self, top: Path | None, files: Sequence[str] = ()) -> None:
        self.top = top
        self.files = list(files)
        self.archived: list[str] = []

    def repository_of(self, directory: str) -> str | None:
        inside = self.top is not None and Path(directory).is_relative_to(self.top)
        return str(self.top) if inside else None

    def source_of(
        self, project: str, *, remote: str | None, changed_since: str | None
    ) -> BuildSource:
        return GIT_SOURCE

    def files_of(self, project: str) -> Sequence[str]:
        return self.files

    def write_snapshot(self, project: str, files: Sequence[str], out: BinaryIO) -> str:
        self.archived = list(files)
        out.write(b"archive")
        return "b" * 64


@dataclass(frozen=True)
class Stored:
    id: str
    sha256: str


class FakeUploads:
    """A controller that stores snapshots with a given SHA-256, or has no snapshot route."""

    base_url = "http://controller.test"

    def __init__(self, sha256: str = "b" * 64, *, missing: bool = False) -> None:
        self.sha256 = sha256
        self.missing = missing
        self.uploaded: list[str] = []

    async def upload_snapshot(self, path: str) -> Stored:
        if self.missing:
            raise ResourceNotFound(404, "Not Found")
        self.uploaded.append(path)
        return Stored("s1", self.sha256.upper())


def snapshot_of(workspace: FakeWorkspace, tmp_path: Path) -> PreparedSource:
    """Prepare the snapshot of the project at ``tmp_path / "p"``, written to ``tmp_path / "w"``."""
    (tmp_path / "w").mkdir()
    return prepare_source(
        workspace, tmp_path / "p" / ".cirrus.yml", tmp_path / "w", remote=None, changed_since=None
    )


def test_a_project_outside_git_has_no_source_and_nothing_to_upload(tmp_path: Path) -> None:
    prepared = prepare_source(
        FakeWorkspace(None),
        tmp_path / ".cirrus.yml",
        tmp_path / "w",
        remote=None,
        changed_since=None,
    )
    assert (prepared.project, prepared.source, prepared.archive) == (tmp_path, BuildSource(), None)


def test_the_snapshot_holds_the_projects_files_but_not_the_work_directory(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "tmp"
    workdir.mkdir()
    workspace = FakeWorkspace(tmp_path, ["a.py", "tmp/snapshot.tar.gz", "sub/b.py"])
    prepared = prepare_source(
        workspace, tmp_path / "sub" / ".cirrus.yml", workdir, remote=None, changed_since=None
    )
    assert workspace.archived == ["a.py", "sub/b.py"]
    assert (prepared.project, prepared.source, prepared.file_count) == (tmp_path, GIT_SOURCE, 2)
    assert prepared.archive is not None
    assert prepared.archive.read_bytes() == b"archive"


def test_a_remote_source_is_not_archived(tmp_path: Path) -> None:
    workspace = FakeWorkspace(tmp_path, ["a.py"])
    prepared = prepare_source(
        workspace, tmp_path / ".cirrus.yml", tmp_path, remote="origin", changed_since=None
    )
    assert (prepared.source, prepared.archive, workspace.archived) == (GIT_SOURCE, None, [])


async def test_the_uploaded_snapshot_becomes_the_builds_source(tmp_path: Path) -> None:
    prepared = snapshot_of(FakeWorkspace(tmp_path / "p", ["a.py"]), tmp_path)
    uploads = FakeUploads()
    source = await send_source(uploads, prepared)
    assert uploads.uploaded == [str(prepared.archive)]
    assert (source.commit, source.snapshot, source.snapshot_sha256) == ("a" * 40, "s1", "b" * 64)


async def test_a_snapshot_stored_with_another_digest_is_an_unexpected_answer(
    tmp_path: Path,
) -> None:
    prepared = snapshot_of(FakeWorkspace(tmp_path / "p", ["a.py"]), tmp_path)
    with pytest.raises(UnexpectedAnswer, match=r"not b+ as sent"):
        await send_source(FakeUploads("c" * 64), prepared)


async def test_a_controller_without_snapshots_is_told_to_use_remote(tmp_path: Path) -> None:
    prepared = snapshot_of(FakeWorkspace(tmp_path / "p", ["a.py"]), tmp_path)
    with pytest.raises(ResourceNotFound, match=r"does not accept snapshots.*--remote"):
        await send_source(FakeUploads(missing=True), prepared)
