"""Copying a host directory tree into a VM over SFTP (the ``clone`` command's files).

Only the guest's SFTP server is needed (no git, tar or rsync in the image). Directories come
first, then regular files with their modes and times, then symlinks as symlinks: their targets
must exist before the server could set attributes through them.
"""

from __future__ import annotations

import asyncio
import os

import asyncssh

from domain.errors import InstanceError


def tree_of(root: str) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """The directories, regular files and symlinks (with targets) under ``root``, relative
    POSIX paths, parents before children."""
    directories: list[str] = []
    files: list[str] = []
    links: list[tuple[str, str]] = []
    for current, dirs, names in os.walk(root):
        base = os.path.relpath(current, root)
        for name in sorted(dirs + names):
            path = os.path.join(current, name)
            relative = name if base == "." else f"{base}/{name}"
            if os.path.islink(path):
                links.append((relative, os.readlink(path)))
            elif os.path.isdir(path):
                directories.append(relative)
            elif os.path.isfile(path):
                files.append(relative)
        dirs.sort()
    return directories, files, links


async def copy_tree(connection: asyncssh.SSHClientConnection, local_dir: str, target: str) -> None:
    """Copy what is under ``local_dir`` into the guest's ``target`` (made when missing).

    Existing files are replaced; ``InstanceError`` names the target and the server's reason.
    """
    directories, files, links = await asyncio.to_thread(tree_of, local_dir)
    try:
        async with connection.start_sftp_client() as sftp:
            await sftp.makedirs(target, exist_ok=True)
            for relative in directories:
                await sftp.makedirs(f"{target}/{relative}", exist_ok=True)
            for relative in files:
                local = os.path.join(local_dir, relative)
                await sftp.put(local, f"{target}/{relative}", preserve=True)
            for relative, link in links:
                path = f"{target}/{relative}"
                if await sftp.lexists(path):
                    await sftp.remove(path)
                await sftp.symlink(link, path)
    except (OSError, asyncssh.Error) as exc:
        reason = exc.reason if isinstance(exc, asyncssh.Error) else str(exc)
        raise InstanceError(f"cannot copy the files into {target} over SFTP: {reason}") from exc


def _reason(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, asyncssh.Error) else str(exc)


async def _walk(sftp: asyncssh.SFTPClient, root: str, prefix: str, found: list[str]) -> None:
    for entry in await sftp.readdir(root):
        name = str(entry.filename)
        if name in (".", ".."):
            continue
        kind = entry.attrs.type
        if kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
            await _walk(sftp, f"{root}/{name}", f"{prefix}{name}/", found)
        elif kind == asyncssh.FILEXFER_TYPE_REGULAR:
            found.append(prefix + name)


async def list_files(connection: asyncssh.SSHClientConnection, root: str) -> tuple[str, ...]:
    """The regular files under the guest's ``root`` (relative, sorted); none when missing.

    Symlinks are neither followed nor listed.
    """
    found: list[str] = []
    try:
        async with connection.start_sftp_client() as sftp:
            if await sftp.isdir(root):
                await _walk(sftp, root, "", found)
    except (OSError, asyncssh.Error) as exc:
        raise InstanceError(
            f"cannot list the files under {root} over SFTP: {_reason(exc)}"
        ) from exc
    return tuple(sorted(found))


async def copy_out(
    connection: asyncssh.SSHClientConnection, remote_path: str, local_path: str
) -> bool:
    """Copy the guest's file or directory ``remote_path`` to ``local_path``; ``False`` when it
    does not exist. Streams in blocks (``sftp.get``), so a big file costs no memory."""
    try:
        async with connection.start_sftp_client() as sftp:
            if not await sftp.exists(remote_path):
                return False
            await asyncio.to_thread(os.makedirs, os.path.dirname(local_path), exist_ok=True)
            await sftp.get(remote_path, local_path, recurse=True, preserve=True)
    except (OSError, asyncssh.Error) as exc:
        raise InstanceError(f"cannot copy {remote_path} out over SFTP: {_reason(exc)}") from exc
    return True
