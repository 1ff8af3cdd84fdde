"""The build source of a local git checkout: what ``cirrus build submit`` tells the controller.

Branch, commit, the commit's message and author, the repository's ``owner/name`` from its remote
URL and the default branch; with ``remote`` also the clone URL (after checking that the commit
was pushed there), with ``changed_since`` the changed files.
"""

from __future__ import annotations

import re
from pathlib import Path

from adapters.workspace.errors import WorkspaceError
from adapters.workspace.git import (
    NETWORK_TIMEOUT_SECONDS,
    GitFailed,
    find_repository,
    git_paths,
    git_text,
)
from domain.source import BuildSource

DEFAULT_REMOTE = "origin"
# ``scheme://[user@]host[:port]/path``.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*(?P<path>/.*)?$")
# scp-like ``[user@]host:path`` (no slash before the colon; not a Windows drive letter).
_SCP = re.compile(r"^(?:[^@/]+@)?[^/:]{2,}:(?P<path>.*)$")


def repository_name(url: str) -> str:
    """Return ``owner/name`` of a remote URL (https, ssh, scp-like ``git@host:owner/name.git``
    or a file path: its last two components), or "" when it has fewer than two."""
    text = url.strip()
    match = _URL.match(text) or _SCP.match(text)
    path = (match.group("path") or "") if match else text
    parts = [part for part in path.replace("\\", "/").split("/") if part and part != "."]
    if parts and parts[-1].endswith(".git"):
        parts[-1] = parts[-1][: -len(".git")]
    parts = [part for part in parts if part]
    if len(parts) < 2:
        return ""
    return f"{parts[-2]}/{parts[-1]}"


def _optional(root: Path, *args: str) -> str:
    """Run git and return its output, or "" when it fails (an answer that may not exist)."""
    try:
        return git_text(root, *args)
    except GitFailed:
        return ""


def _remotes(top: Path) -> list[str]:
    return _optional(top, "remote").split()


def _naming_remote(top: Path, branch: str, remote: str | None) -> str:
    """The remote that names the repository: the given one, else the branch's upstream remote,
    else ``origin``, else the first one ("" without remotes)."""
    if remote is not None:
        return remote
    remotes = _remotes(top)
    upstream = _optional(top, "config", "--get", f"branch.{branch}.remote") if branch else ""
    for candidate in (upstream, DEFAULT_REMOTE):
        if candidate in remotes:
            return candidate
    return remotes[0] if remotes else ""


def _default_branch(top: Path, remote: str, branch: str) -> str:
    """The remote's HEAD branch (``refs/remotes/<remote>/HEAD``), else the current branch."""
    if remote:
        head = _optional(top, "symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD")
        prefix = f"refs/remotes/{remote}/"
        if head.startswith(prefix):
            return head[len(prefix) :]
    return branch


def _check_pushed(top: Path, remote: str, commit: str) -> None:
    """``WorkspaceError`` unless ``commit`` is on ``remote``: in one of its remote-tracking
    branches (what the last fetch or push saw), else at the tip of one of its refs now."""
    tracking = _optional(
        top, "branch", "--remotes", "--contains", commit, "--format=%(refname)"
    ).splitlines()
    if any(ref.startswith(f"refs/remotes/{remote}/") for ref in tracking):
        return
    try:
        advertised = git_text(top, "ls-remote", remote, timeout=NETWORK_TIMEOUT_SECONDS)
    except GitFailed as error:
        raise WorkspaceError(
            f"cannot check that commit {commit[:12]} is on remote {remote}: {error.message}"
        ) from None
    if any(line.split("\t", 1)[0] == commit for line in advertised.splitlines()):
        return
    raise WorkspaceError(f"commit {commit[:12]} is not on remote {remote}: push it first")


def _changed_files(top: Path, since: str, *, uncommitted: bool) -> tuple[str, ...]:
    """Files changed between ``since`` and HEAD (from their merge base, as Cirrus compared a
    branch with its base), plus, for a snapshot, the uncommitted and untracked ones."""
    try:
        git_text(top, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")
    except GitFailed:
        raise WorkspaceError(f"--changed-since: {since!r} is not a commit of {top}") from None
    changed = set(git_paths(top, "diff", "--name-only", "-z", f"{since}...HEAD"))
    if uncommitted:
        changed.update(git_paths(top, "diff", "--name-only", "-z", "HEAD"))
        changed.update(git_paths(top, "ls-files", "-z", "--others", "--exclude-standard"))
    return tuple(sorted(changed))


def local_source(
    root: Path, *, remote: str | None = None, changed_since: str | None = None
) -> BuildSource:
    """Return the git source of the checkout that holds ``root`` (an empty source outside git).

    ``remote``: the source is that remote's repository at HEAD's commit, for a worker to
    clone; HEAD's commit must be on it. ``changed_since``: ``changed_files`` are the files
    changed since that revision (uncommitted changes included unless ``remote`` is given).
    """
    top = find_repository(root)
    if top is None:
        if remote is not None or changed_since is not None:
            option = "--remote" if remote is not None else "--changed-since"
            raise WorkspaceError(f"{option} needs a git repository: {root} is not in one")
        return BuildSource()
    commit = _optional(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if not commit and (remote is not None or changed_since is not None):
        raise WorkspaceError(f"the repository {top} has no commit yet")
    branch = _optional(top, "symbolic-ref", "--quiet", "--short", "HEAD")
    tag = "" if branch or not commit else _optional(top, "describe", "--tags", "--exact-match")
    naming = _naming_remote(top, branch, remote)
    clone_url = ""
    if remote is not None:
        if remote not in _remotes(top):
            raise WorkspaceError(f"--remote: the repository {top} has no remote {remote!r}")
        clone_url = git_text(top, "remote", "get-url", remote)
        _check_pushed(top, remote, commit)
    url = clone_url or (_optional(top, "remote", "get-url", naming) if naming else "")
    message = git_text(top, "show", "-s", "--format=%B", commit).strip() if commit else ""
    author = git_text(top, "show", "-s", "--format=%an", commit) if commit else ""
    changed = (
        _changed_files(top, changed_since, uncommitted=remote is None)
        if changed_since is not None
        else None
    )
    return BuildSource(
        repository=repository_name(url) if url else "",
        clone_url=clone_url,
        branch=branch,
        tag=tag,
        commit=commit,
        change_title=message.split("\n", 1)[0].strip(),
        change_message=message,
        change_author=author,
        default_branch=_default_branch(top, naming, branch),
        changed_files=changed,
    )
