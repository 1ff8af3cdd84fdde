"""A snapshot: the project's files as a deterministic ``.tar.gz``, and its SHA-256.

The same files with the same contents, modes and modification times give the same bytes:
names in sorted order, owner 0:0 without names, gzip header without time or file name. Only
regular files and symlinks are archived (directories come from the paths; git has no empty
ones either); a file keeps only its executable bit (0755 or 0644). A symlink that stays inside
the project is kept as a symlink; one that leads out of it is archived as the file it points to
(the worker unpacks only links inside the tree), or left out when that is not a regular file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from adapters.workspace.errors import WorkspaceError

EXECUTABLE_MODE = 0o755
REGULAR_MODE = 0o644
SYMLINK_MODE = 0o777
_CHUNK = 1 << 20


class _HashingWriter:
    """A write-only stream that hashes what passes through it to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        """Hash ``data`` and write it on."""
        self.digest.update(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._out.flush()


class _ExactReader:
    """Reads a file that must have exactly the size it had when its header was written."""

    def __init__(self, handle: BinaryIO, size: int, name: str) -> None:
        self._handle = handle
        self._left = size
        self._name = name

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes; a file that shrank meanwhile is an error."""
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._handle.read(wanted)
        if len(data) < wanted:
            raise WorkspaceError(f"{self._name} changed while the snapshot was written")
        self._left -= len(data)
        return data


def _member(name: str, kind: bytes, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = int(mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _inside(root: Path, name: str, target: str) -> bool:
    """Whether a symlink at ``name`` with ``target`` resolves (lexically) inside ``root``."""
    if os.path.isabs(target):
        return False
    joined = os.path.normpath(PurePosixPath(name).parent.joinpath(target).as_posix())
    return joined != ".." and not joined.startswith("../")


def _add_file(archive: tarfile.TarFile, path: Path, name: str, *, follow: bool) -> None:
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                return
            executable = status.st_mode & 0o111
            info = _member(
                name,
                tarfile.REGTYPE,
                EXECUTABLE_MODE if executable else REGULAR_MODE,
                status.st_mtime,
            )
            info.size = status.st_size
            archive.addfile(info, _ExactReader(handle, status.st_size, name))
    except (FileNotFoundError, IsADirectoryError):
        # Gone since it was listed (a temporary file), or a link out of the project to a
        # directory: neither is a file of the project.
        return
    except OSError as error:
        what = "the target of " if follow else ""
        raise WorkspaceError(f"cannot read {what}{path}: {error.strerror or error}") from None


def write_snapshot(root: Path, files: Sequence[str], out: BinaryIO) -> str:
    """Write the ``files`` (relative POSIX paths under ``root``) to ``out`` as a deterministic
    ``.tar.gz``; return its SHA-256 (hex)."""
    writer = _HashingWriter(out)
    # mtime=0 and no file name: the gzip header is the same for every run.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name in sorted(set(files)):
            path = root / name
            try:
                status = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(status.st_mode):
                target = os.readlink(path)
                if _inside(root, name, target):
                    info = _member(name, tarfile.SYMTYPE, SYMLINK_MODE, status.st_mtime)
                    info.linkname = target
                    archive.addfile(info)
                else:
                    _add_file(archive, path, name, follow=True)
            elif stat.S_ISREG(status.st_mode):
                _add_file(archive, path, name, follow=False)
    writer.flush()
    return writer.digest.hexdigest()
