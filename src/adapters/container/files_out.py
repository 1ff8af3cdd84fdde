"""Reading a container's files from the worker host: listing a tree and copying a path out.

Paths under the working directory are read through its bind mount (no engine process, nothing
needed in the image); others are listed with ``find`` in the container and copied with
``<engine> cp``, which needs nothing in the image either.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil

from adapters.container.engine import ContainerEngine, first_error_line
from adapters.host.tree_files import copy_path, list_tree_files
from domain.errors import InstanceError

_LIST_FILES = 'test -d "$1" || exit 0; cd "$1" && find . -type f'


def mounted_path(working_dir: str, host_working_dir: str, remote_path: str) -> str | None:
    """The host path of ``remote_path`` (relative: to ``working_dir``) when it lies under the
    bind-mounted ``working_dir``; ``None`` else."""
    target = posixpath.normpath(posixpath.join(working_dir, remote_path))
    if target != working_dir and not target.startswith(working_dir + "/"):
        return None
    relative = posixpath.relpath(target, working_dir)
    return os.path.normpath(os.path.join(host_working_dir, relative))


async def list_files(
    engine: ContainerEngine, container: str, mounted: str | None, target: str
) -> tuple[str, ...]:
    """The regular files under ``target``: from its ``mounted`` host path, else by ``find``."""
    if mounted is not None:
        return await asyncio.to_thread(list_tree_files, mounted)
    args = ["exec", container, "/bin/sh", "-c", _LIST_FILES, "sh", target]
    result = await engine.run(args, check=False)
    if result.returncode != 0:
        raise InstanceError(
            f"cannot list the files under {target}: "
            f"{first_error_line(result.stderr) or f'status {result.returncode}'}"
        )
    return tuple(sorted(line[2:] for line in result.stdout.splitlines() if line[2:]))


async def copy_out(
    engine: ContainerEngine, container: str, mounted: str | None, source: str, local_path: str
) -> bool:
    """Copy ``source`` to ``local_path``: from its ``mounted`` host path, else ``<engine> cp``;
    ``False`` when it does not exist."""
    if mounted is not None:
        try:
            return await asyncio.to_thread(copy_path, mounted, local_path)
        except (OSError, shutil.Error) as exc:
            raise InstanceError(f"cannot copy {source} out: {exc}") from exc
    await asyncio.to_thread(os.makedirs, os.path.dirname(local_path), exist_ok=True)
    result = await engine.run(["cp", f"{container}:{source}", local_path], check=False)
    if result.returncode == 0:
        return True
    if "no such file or directory" in result.stderr.lower():
        return False
    raise InstanceError(
        f"cannot copy {source} out of the container: "
        f"{first_error_line(result.stderr) or f'status {result.returncode}'}"
    )
