"""Reading an instance's files on the worker host: listing a tree, copying a path out.

Shared by the instances whose files the worker can reach directly (the host's own directories,
a container's bind-mounted working directory) and by the copies of the others.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def list_tree_files(root: str) -> tuple[str, ...]:
    """The regular files under ``root`` as sorted POSIX paths relative to it (symlinks to files
    included, symlinked directories not entered); none when ``root`` is missing."""
    if not os.path.isdir(root):
        return ()
    found: list[str] = []
    for current, dirs, names in os.walk(root):
        base = os.path.relpath(current, root)
        for name in names:
            if os.path.isfile(os.path.join(current, name)):
                found.append(name if base == "." else f"{base}/{name}".replace(os.sep, "/"))
        dirs.sort()
    return tuple(sorted(found))


def copy_path(source: str, target: str) -> bool:
    """Copy the file or directory ``source`` to ``target`` (parents made, symlinks kept as
    symlinks, an existing ``target`` merged into); ``False`` when ``source`` does not exist."""
    if not os.path.lexists(source):
        return False
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    if os.path.isdir(source) and not os.path.islink(source):
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target, follow_symlinks=False)
    return True
