"""Running the real ``git`` on the user's repository: one place for its errors and environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from adapters.workspace.errors import WorkspaceError

GIT = "git"
# A remote that needs a password must fail, not wait for a prompt nobody answers.
_QUIET_ENVIRONMENT: Mapping[str, str] = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
# ``git ls-remote`` may talk to a server: a dead one must not hang the command forever.
NETWORK_TIMEOUT_SECONDS = 60.0


class GitFailed(WorkspaceError):
    """``git`` ran and exited non-zero; ``message`` is its last line of stderr."""

    def __init__(self, args: tuple[str, ...], returncode: int, message: str) -> None:
        super().__init__(f"git {' '.join(args)}: {message or f'exit status {returncode}'}")
        self.returncode = returncode
        self.message = message


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


def git_bytes(root: Path, *args: str, timeout: float | None = None) -> bytes:
    """Run ``git -C root ARGS`` and return its stdout; ``GitFailed`` when it exits non-zero."""
    environment = {**os.environ, **_QUIET_ENVIRONMENT}
    try:
        completed = subprocess.run(
            [GIT, "-C", str(root), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=environment,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise WorkspaceError(f"git is not installed: it is needed to read {root}") from None
    except subprocess.TimeoutExpired:
        raise WorkspaceError(
            f"git {' '.join(args)} in {root} did not finish within {timeout:g} s"
        ) from None
    if completed.returncode != 0:
        raise GitFailed(args, completed.returncode, _last_line(completed.stderr))
    return completed.stdout


def git_text(root: Path, *args: str, timeout: float | None = None) -> str:
    """Run git and return its stdout as text without the final newline."""
    return git_bytes(root, *args, timeout=timeout).decode("utf-8", "replace").rstrip("\n")


def git_paths(root: Path, *args: str) -> list[str]:
    """Run a git command with ``-z`` output and return the paths (undecodable bytes kept as
    the file system's own escapes, so that the names open the same files)."""
    return [os.fsdecode(item) for item in git_bytes(root, *args).split(b"\0") if item]


def find_repository(path: Path) -> Path | None:
    """Return the top level of the git work tree that holds ``path`` (a file or a directory),
    or None outside one (also when git itself is missing)."""
    directory = path if path.is_dir() else path.parent
    try:
        top = git_text(directory, "rev-parse", "--show-toplevel")
    except WorkspaceError:
        return None
    return Path(top) if top else None
