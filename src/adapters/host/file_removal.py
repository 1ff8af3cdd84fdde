"""Removing a task's files from the host: its directory trees, and single files that may be gone.

The host and container instances both keep a task's files in private host directories; both
remove them with these functions (blocking: call them in a thread).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path


def remove_files(paths: Iterable[str | Path]) -> None:
    """Delete files; one that does not exist (any more) is no error."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def remove_tree(path: str) -> None:
    """``rm -rf``, also through directories a task made read-only (e.g. Go's module cache)."""
    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        for root, dirs, _ in os.walk(path):
            for name in dirs:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.chmod(full, stat.S_IRWXU)
        shutil.rmtree(path)
