"""The files of a snapshot build, as a ``.cirrus.star``'s ``fs`` module and ``load()`` see them.

``open_snapshot_files`` copies the snapshot from the store into a spooled temporary file (memory
up to ``SPOOL_MEMORY_BYTES``, then disk) for the length of one submission; ``TarSourceFiles``
reads its members lazily: the index is built on the first call, a file's bytes on its read.
Paths are relative to the tree's root; ``..`` above the root is the root (as ``fs`` does over
a local directory), and only regular files are read (a link is listed, never followed).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import tarfile
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from domain.snapshots import SnapshotStore

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
"""Bytes of a snapshot kept in memory while a submission reads it; the rest goes to disk."""
MAX_FILE_BYTES = 16 * 1024 * 1024
"""The largest file ``fs.read`` returns from a snapshot (a larger one reads as missing)."""


def _clean(path: str) -> str:
    """Return ``path`` relative to the root ("" for the root itself)."""
    return posixpath.normpath("/" + path).lstrip("/")


class TarSourceFiles:
    """``SourceFiles`` over a ``.tar.gz`` (a seekable file, open while the files are used)."""

    def __init__(self, archive: IO[bytes], max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self._archive = archive
        self._max_file_bytes = max_file_bytes
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._children: dict[str, set[str]] = {}

    def _index(self) -> tarfile.TarFile:
        if self._tar is not None:
            return self._tar
        self._archive.seek(0)
        # Kept open for the reads to come; ``close`` ends it.
        tar = tarfile.open(fileobj=self._archive, mode="r:gz")  # noqa: SIM115
        self._children[""] = set()
        for member in tar:
            name = _clean(member.name)
            if not name:
                continue
            self._members[name] = member
            # Every ancestor is a directory, also when the archive has no entry of its own
            # for it (archives of a file list have none).
            parent, _, leaf = name.rpartition("/")
            while True:
                self._children.setdefault(parent, set()).add(leaf)
                if not parent:
                    break
                parent, _, leaf = parent.rpartition("/")
            if member.isdir():
                self._children.setdefault(name, set())
        self._tar = tar
        return tar

    def read(self, path: str) -> bytes | None:
        """Return the bytes of the regular file ``path``, or None."""
        tar = self._index()
        member = self._members.get(_clean(path))
        if member is None or not member.isfile() or member.size > self._max_file_bytes:
            return None
        extracted = tar.extractfile(member)
        return None if extracted is None else extracted.read()

    def close(self) -> None:
        """Release the archive reader (the file itself belongs to the caller)."""
        if self._tar is not None:
            self._tar.close()

    def list(self, directory: str) -> list[str] | None:
        """Return the sorted names in ``directory``, or None if it is no directory."""
        self._index()
        names = self._children.get(_clean(directory))
        return None if names is None else sorted(names)


@contextlib.asynccontextmanager
async def open_snapshot_files(
    store: SnapshotStore, snapshot_id: str
) -> AsyncIterator[TarSourceFiles]:
    """Yield the files of a stored snapshot; its copy is removed on exit."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        async for chunk in store.iter_snapshot(snapshot_id):
            await asyncio.to_thread(spool.write, chunk)
        files = TarSourceFiles(spool)
        try:
            yield files
        finally:
            files.close()
