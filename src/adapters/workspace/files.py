"""Which files make up a project: what git would commit, ignored files and ``.git`` left out.

In a git work tree git itself answers (``ls-files``: tracked and untracked files that are not
ignored, with every ignore source git knows: nested ``.gitignore``, ``.git/info/exclude``,
``core.excludesFile``). Outside git the tree's own ``.gitignore`` files are applied, nested ones
included, with the same matching rules (``pathspec.GitIgnoreSpec``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pathspec import GitIgnoreSpec

from adapters.workspace.errors import WorkspaceError
from adapters.workspace.git import find_repository, git_paths, git_text

GITLINK_MODE = "160000"


def project_files(root: Path) -> list[str]:
    """Return the project's files under ``root`` as sorted relative POSIX paths: tracked and
    untracked files that are not ignored (and that exist: a deleted tracked file is not one),
    symlinks included, ``.git`` never."""
    root = root.resolve()
    if not root.is_dir():
        raise WorkspaceError(f"{root}: not a directory")
    top = find_repository(root)
    files = _git_files(root) if top is not None else _walk_files(root)
    return sorted(path for path in set(files) if ".git" not in PurePosixPath(path).parts)


def _git_files(root: Path) -> list[str]:
    """The files git lists under ``root`` (relative to it), submodules and untracked nested
    repositories expanded into their own files."""
    listed = git_paths(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    nested = {path.rstrip("/") for path in listed if path.endswith("/")}
    nested.update(_gitlinks(root))
    files: list[str] = []
    for path in listed:
        if path.endswith("/") or path in nested:
            continue
        # ``--cached`` still lists a tracked file deleted from the work tree.
        if os.path.lexists(root / path):
            files.append(path)
    for directory in sorted(nested):
        inner = root / directory
        # A submodule that is not checked out is an empty directory: nothing to take.
        if (inner / ".git").exists():
            files.extend(f"{directory}/{path}" for path in _git_files(inner))
    return files


def _gitlinks(root: Path) -> list[str]:
    """The submodule paths of the index under ``root``."""
    entries = git_text(root, "ls-files", "--stage", "-z").split("\0")
    links: list[str] = []
    for entry in entries:
        info, _, path = entry.partition("\t")
        if info.split(" ", 1)[0] == GITLINK_MODE:
            links.append(path)
    return links


@dataclass(frozen=True, slots=True)
class _Rules:
    """The rules of one ``.gitignore``; ``base`` is its directory relative to the root."""

    base: str
    spec: GitIgnoreSpec


def _ignored(path: str, is_dir: bool, rules: list[_Rules]) -> bool:
    """Whether ``path`` is ignored: the deepest ``.gitignore`` with a matching rule decides,
    as in git."""
    for rule in reversed(rules):
        relative = path[len(rule.base) + 1 :] if rule.base else path
        result = rule.spec.check_file(relative + "/" if is_dir else relative)
        if result.include is not None:
            return result.include
    return False


def _read_rules(directory: Path, base: str) -> _Rules | None:
    path = directory / ".gitignore"
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise WorkspaceError(f"cannot read {path}: {error.strerror or error}") from None
    return _Rules(base, GitIgnoreSpec.from_lines(lines))


def _walk_files(root: Path) -> list[str]:
    """The files under ``root`` that its ``.gitignore`` files do not exclude."""
    return list(_walk(root, "", []))


def _walk(directory: Path, base: str, rules: list[_Rules]) -> Iterator[str]:
    own = _read_rules(directory, base)
    active = [*rules, own] if own is not None else rules
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as error:
        raise WorkspaceError(f"cannot list {directory}: {error.strerror or error}") from None
    for entry in entries:
        if entry.name == ".git":
            continue
        path = f"{base}/{entry.name}" if base else entry.name
        # A symlink is a file of the project even when it points to a directory.
        is_dir = entry.is_dir(follow_symlinks=False)
        if _ignored(path, is_dir, active):
            continue
        if is_dir:
            # As in git, nothing inside an ignored directory can be re-included, so an
            # ignored directory is never entered.
            yield from _walk(Path(entry.path), path, active)
        elif entry.is_symlink() or entry.is_file(follow_symlinks=False):
            yield path
