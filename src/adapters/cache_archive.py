"""Cache archives (tar + zstd, streamed both ways) and the content digest of cached folders.

An archive holds paths relative to its base folder, as the agent's did: unpacked into the same
base folder of another task, every file lands where it was. Writing and reading stream through
``zstandard``'s stream writer and reader, so an archive of any size costs bounded memory.
Unpacking uses ``tarfile``'s ``tar`` filter: no member lands outside the target folder and
special permission bits are dropped; symlinks are kept as they were (a cached virtualenv links
to its interpreter by an absolute path, which the stricter ``data`` filter refuses).

The module itself implements ``domain.worker_tools.CacheArchives``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from domain.worker_tools import CacheArchiveError

# ``tarfile``, ``zstandard`` and ``safe_tar`` are imported by the two functions that archive:
# an idle worker, or one whose tasks have no caches, does not carry them in memory.

__all__ = ["CacheArchiveError", "folder_is_empty", "read_archive", "tree_digest", "write_archive"]

CHUNK = 1024 * 1024
_LEVEL = 3  # zstd's default: fast, and most of the gain


def _top_level(base: str, members: Sequence[str]) -> list[str]:
    """``members`` sorted, ``.`` (the base itself) replaced by its entries: names stay clean."""
    names: set[str] = set()
    for member in members:
        if os.path.normpath(member) == ".":
            names.update(os.listdir(base))
        else:
            names.add(member)
    return sorted(names)


def write_archive(base: str, members: Sequence[str], target: str) -> int:
    """Archive ``members`` (paths relative to ``base``, directories recursively) into the
    tar.zst file ``target``; return its size in bytes."""
    import tarfile

    import zstandard

    compressor = zstandard.ZstdCompressor(level=_LEVEL)
    try:
        with (
            open(target, "wb") as file,
            compressor.stream_writer(file, closefd=False) as compressed,
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for member in _top_level(base, members):
                tar.add(os.path.join(base, member), arcname=member, recursive=True)
    except (OSError, tarfile.TarError, zstandard.ZstdError) as exc:
        raise CacheArchiveError(f"cannot write the cache archive: {exc}") from exc
    return os.path.getsize(target)


def read_archive(source: str, target: str) -> int:
    """Unpack the tar.zst file ``source`` into the folder ``target`` (made when missing);
    return the number of regular files."""
    import tarfile

    import zstandard

    from adapters.safe_tar import extract_members

    Path(target).mkdir(parents=True, exist_ok=True)
    files = 0
    decompressor = zstandard.ZstdDecompressor()
    try:
        with (
            open(source, "rb") as file,
            decompressor.stream_reader(file, closefd=False) as uncompressed,
            tarfile.open(fileobj=uncompressed, mode="r|") as tar,
        ):
            for member in tar:
                extract_members(tar, [member], target, strict=False)
                files += member.isfile()
    except (OSError, tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise CacheArchiveError(f"cannot unpack the cache archive: {exc}") from exc
    return files


def _entries(base: str, member: str) -> Iterator[tuple[str, str]]:
    """``(relative path, absolute path)`` of ``member`` and everything under it, sorted."""
    path = os.path.join(base, member)
    yield member, path
    if os.path.isdir(path) and not os.path.islink(path):
        for name in sorted(os.listdir(path)):
            yield from _entries(base, f"{member}/{name}")


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(base: str, members: Sequence[str]) -> str:
    """The SHA-256 (hex) of the content of ``members`` under ``base``: paths, kinds, link
    targets and file contents, not times or owners (a restore or a copy changes those)."""
    digest = hashlib.sha256()
    for member in sorted(members):
        for relative, path in _entries(base, member):
            if os.path.islink(path):
                line = f"L\0{relative}\0{os.readlink(path)}"
            elif os.path.isdir(path):
                line = f"D\0{relative}"
            elif os.path.isfile(path):
                mode = "x" if os.access(path, os.X_OK) else "-"
                line = f"F\0{relative}\0{mode}\0{_file_digest(path)}"
            else:
                continue
            digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def folder_is_empty(path: str) -> bool:
    """Whether ``path`` is missing, or a directory without a single entry below it."""
    if not os.path.lexists(path):
        return True
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    return not any(True for _ in os.scandir(path))
