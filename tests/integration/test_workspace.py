"""The workspace adapter against real git repositories in tmp_path: which files a project has,
the snapshot archive of them, and the build source a checkout describes."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from adapters.workspace import (
    WorkspaceError,
    find_repository,
    local_source,
    project_files,
    repository_name,
    write_snapshot,
)
from tests.integration.git_repos import git, isolate_git, new_repository, write

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A git configuration of the test's own."""
    isolate_git(tmp_path, monkeypatch)


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    """The members of a ``.tar.gz`` by name."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {member.name: member for member in archive.getmembers()}


# --- project files --------------------------------------------------------------------------


def test_a_checkout_has_its_tracked_and_untracked_files_but_not_ignored_or_deleted_ones(
    tmp_path: Path,
) -> None:
    repo = new_repository(tmp_path / "repo")
    write(repo / ".gitignore", "build/\n*.log\n")
    write(repo / "src" / ".gitignore", "generated.py\n!keep.log\n")
    write(repo / "src" / "app.py")
    write(repo / "src" / "keep.log")
    write(repo / "src" / "generated.py")
    write(repo / "doomed.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "More")
    (repo / "doomed.txt").unlink()
    write(repo / "new.txt")
    write(repo / "debug.log")
    write(repo / "build" / "out.bin")
    assert project_files(repo) == [
        ".gitignore",
        "README.md",
        "new.txt",
        "src/.gitignore",
        "src/app.py",
        "src/keep.log",
    ]


def test_a_subdirectory_of_a_checkout_has_the_files_below_it_relative_to_it(
    tmp_path: Path,
) -> None:
    repo = new_repository(tmp_path / "repo")
    write(repo / "sub" / "a.txt")
    assert find_repository(repo / "sub") == repo.resolve()
    assert project_files(repo / "sub") == ["a.txt"]


def test_a_submodule_contributes_its_checked_out_files(tmp_path: Path) -> None:
    library = new_repository(tmp_path / "library")
    write(library / "lib.py")
    git(library, "add", "-A")
    git(library, "commit", "-q", "-m", "Library")
    repo = new_repository(tmp_path / "repo")
    git(repo, "submodule", "--quiet", "add", str(library), "vendor/library")
    write(repo / "vendor" / "library" / "local-change.py")
    assert project_files(repo) == [
        ".gitmodules",
        "README.md",
        "vendor/library/README.md",
        "vendor/library/lib.py",
        "vendor/library/local-change.py",
    ]


def test_outside_git_the_gitignore_files_of_the_tree_decide(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project / ".gitignore", "*.tmp\ncache/\n/only-top.txt\n")
    write(project / "main.py")
    write(project / "scratch.tmp")
    write(project / "only-top.txt")
    write(project / "cache" / "big.bin")
    write(project / "deep" / ".gitignore", "!wanted.tmp\nlocal/\n")
    write(project / "deep" / "wanted.tmp")
    write(project / "deep" / "other.tmp")
    write(project / "deep" / "only-top.txt")
    write(project / "deep" / "local" / "x")
    write(project / ".git" / "config")  # a stray .git directory is never part of a project
    assert find_repository(project) is None
    assert project_files(project) == [
        ".gitignore",
        "deep/.gitignore",
        "deep/only-top.txt",
        "deep/wanted.tmp",
        "main.py",
    ]


def test_a_path_that_is_no_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="missing: not a directory"):
        project_files(tmp_path / "missing")


# --- snapshot -------------------------------------------------------------------------------


def test_the_snapshot_holds_the_files_with_their_executable_bit_and_inner_symlinks(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    write(project / "run.sh", "#!/bin/sh\necho hi\n").chmod(0o750)
    write(project / "data" / "values.txt", "1 2 3\n").chmod(0o600)
    (project / "link-inside").symlink_to("data/values.txt")
    outside = write(tmp_path / "outside.txt", "from outside\n")
    (project / "link-outside").symlink_to(outside)
    (project / "dir-outside").symlink_to(tmp_path)
    out = io.BytesIO()
    files = ["run.sh", "data/values.txt", "link-inside", "link-outside", "dir-outside"]
    digest = write_snapshot(project, files, out)
    data = out.getvalue()
    assert digest == hashlib.sha256(data).hexdigest()
    found = members(data)
    assert sorted(found) == ["data/values.txt", "link-inside", "link-outside", "run.sh"]
    assert found["run.sh"].mode == 0o755
    assert found["data/values.txt"].mode == 0o644
    assert found["link-inside"].issym()
    assert found["link-inside"].linkname == "data/values.txt"
    assert found["link-outside"].isfile()
    assert (found["run.sh"].uid, found["run.sh"].gid, found["run.sh"].uname) == (0, 0, "")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        extracted = archive.extractfile("link-outside")
        assert extracted is not None
        assert extracted.read() == b"from outside\n"


def test_the_same_files_give_the_same_snapshot_bytes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project / "b.txt", "b")
    write(project / "a" / "c.txt", "c")
    first, second = io.BytesIO(), io.BytesIO()
    assert write_snapshot(project, ["b.txt", "a/c.txt"], first) == write_snapshot(
        project, ["a/c.txt", "b.txt"], second
    )
    assert first.getvalue() == second.getvalue()
    assert list(members(first.getvalue())) == ["a/c.txt", "b.txt"]
    write(project / "b.txt", "changed")
    os.utime(project / "b.txt", (1, 1))
    assert (
        write_snapshot(project, ["b.txt", "a/c.txt"], io.BytesIO())
        != hashlib.sha256(first.getvalue()).hexdigest()
    )


# --- source ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/acme/widget.git", "acme/widget"),
        ("https://user@gitea.example:3000/acme/widget", "acme/widget"),
        ("ssh://git@example.com:2222/acme/widget.git", "acme/widget"),
        ("git@github.com:acme/widget.git", "acme/widget"),
        ("/srv/git/acme/widget.git", "acme/widget"),
        ("file:///srv/git/acme/widget/", "acme/widget"),
        ("../acme/widget", "acme/widget"),
        ("git@github.com:widget.git", ""),
    ],
)
def test_the_repository_name_is_the_last_two_parts_of_the_remote_url(url: str, name: str) -> None:
    assert repository_name(url) == name


def test_a_checkout_describes_its_branch_commit_message_and_author(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "git@github.com:acme/widget.git")
    source = local_source(repo)
    assert source.branch == "main"
    assert source.commit == git(repo, "rev-parse", "HEAD")
    assert source.change_title == "Add the readme"
    assert source.change_message == "Add the readme\n\nWith a body."
    assert source.change_author == "Ada Lovelace"
    assert source.repository == "acme/widget"
    assert source.default_branch == "main"
    assert source.clone_url == ""
    assert source.changed_files is None
    assert source.kind == "none"


def test_a_detached_head_has_no_branch_but_its_tag(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    git(repo, "tag", "v1.0")
    git(repo, "checkout", "-q", "--detach")
    source = local_source(repo)
    assert (source.branch, source.tag) == ("", "v1.0")


def test_outside_git_the_source_is_empty_and_remote_is_refused(tmp_path: Path) -> None:
    assert local_source(tmp_path).kind == "none"
    assert local_source(tmp_path).commit == ""
    with pytest.raises(WorkspaceError, match="--remote needs a git repository"):
        local_source(tmp_path, remote="origin")


def cloned_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A bare ``acme/widget.git`` with a default branch ``trunk``, and a clone of it."""
    seed = new_repository(tmp_path / "seed")
    git(seed, "branch", "-m", "trunk")
    bare = tmp_path / "acme" / "widget.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(bare), str(checkout))
    return bare, checkout


def test_the_default_branch_is_the_remote_head_and_remote_gives_the_clone_url(
    tmp_path: Path,
) -> None:
    bare, checkout = cloned_checkout(tmp_path)
    git(checkout, "checkout", "-q", "-b", "feature")
    write(checkout / "feature.txt")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "Feature")
    git(checkout, "push", "-q", "origin", "feature")
    source = local_source(checkout, remote="origin")
    assert source.kind == "git"
    assert source.clone_url == str(bare)
    assert source.repository == "acme/widget"
    assert (source.branch, source.default_branch) == ("feature", "trunk")
    assert source.commit == git(checkout, "rev-parse", "HEAD")


def test_a_commit_that_is_not_pushed_is_refused_with_what_to_do(tmp_path: Path) -> None:
    _, checkout = cloned_checkout(tmp_path)
    write(checkout / "local.txt")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "Local only")
    commit = git(checkout, "rev-parse", "HEAD")
    with pytest.raises(WorkspaceError) as raised:
        local_source(checkout, remote="origin")
    assert str(raised.value) == f"commit {commit[:12]} is not on remote origin: push it first"
    with pytest.raises(WorkspaceError, match="has no remote 'upstream'"):
        local_source(checkout, remote="upstream")


def test_a_commit_pushed_by_someone_else_is_found_on_the_remote(tmp_path: Path) -> None:
    bare, checkout = cloned_checkout(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare), str(other))
    write(other / "theirs.txt")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "Theirs")
    git(other, "push", "-q", "origin", "trunk")
    # The checkout has the commit (fetched into FETCH_HEAD only) but no tracking ref shows it.
    git(checkout, "fetch", "-q", str(bare), "trunk")
    git(checkout, "checkout", "-q", "FETCH_HEAD")
    assert local_source(checkout, remote="origin").commit == git(other, "rev-parse", "HEAD")


def test_changed_files_are_those_since_the_revision_plus_uncommitted_ones_for_a_snapshot(
    tmp_path: Path,
) -> None:
    _, checkout = cloned_checkout(tmp_path)
    write(checkout / "committed.txt")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "Committed")
    git(checkout, "push", "-q", "origin", "trunk")
    write(checkout / "README.md", "edited\n")
    write(checkout / "untracked.txt")
    write(checkout / ".gitignore", "*.log\n")
    write(checkout / "ignored.log")
    snapshot = local_source(checkout, changed_since="origin/trunk~1")
    assert snapshot.changed_files == (".gitignore", "README.md", "committed.txt", "untracked.txt")
    pushed = local_source(checkout, remote="origin", changed_since="origin/trunk~1")
    assert pushed.changed_files == ("committed.txt",)
    with pytest.raises(WorkspaceError, match="--changed-since: 'nope' is not a commit"):
        local_source(checkout, changed_since="nope")
