"""Unpacking tar archives that come from elsewhere (snapshots, caches) without leaving the target.

Python 3.11.4 added extraction filters (PEP 706): ``data`` (no absolute paths, no ``..``, no
links leading out, no devices, sane modes) and ``tar`` (the same for paths and links, but
special files and absolute symlink targets kept). Debian bookworm's ``python3`` (3.11.2, which
the container image may be built on) lacks them; there the same refusals are made by
``_refuse_outside``, the subset of PEP 706's checks that keeps every member inside the target,
and the standard library's extraction does the rest. Where the filters exist, they are used.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from collections.abc import Iterable
from typing import IO

from domain.archive_check import ArchiveError
from domain.snapshots import SNAPSHOT_CHUNK_LIMIT

HAS_FILTERS = hasattr(tarfile, "data_filter")


class UnsafeMemberError(tarfile.TarError):
    """A member would land outside the target, or is a kind the caller refuses."""


def check_member(member: tarfile.TarInfo, target: str, *, strict: bool = True) -> None:
    """Raise ``UnsafeMemberError`` unless ``member`` stays inside ``target`` (``strict``: the
    ``data`` filter's rules; else the ``tar`` filter's)."""
    if HAS_FILTERS:
        check = tarfile.data_filter if strict else tarfile.tar_filter
        try:
            check(member, target)
        except tarfile.FilterError as error:
            raise UnsafeMemberError(str(error)) from None
        return
    _refuse_outside(member, target, strict=strict)


def extract_members(
    archive: tarfile.TarFile,
    members: Iterable[tarfile.TarInfo],
    target: str,
    *,
    strict: bool = True,
) -> None:
    """Extract ``members`` of ``archive`` into ``target``, each checked first (a streamed
    archive works too: members are extracted as they are read)."""
    for member in members:
        if HAS_FILTERS:
            archive.extract(member, target, filter="data" if strict else "tar")
        else:
            _refuse_outside(member, target, strict=strict)
            archive.extract(member, target, set_attrs=not member.issym())


def _refuse_outside(member: tarfile.TarInfo, target: str, *, strict: bool) -> None:
    root = os.path.realpath(target)
    name = member.name
    if os.path.isabs(name) or name.startswith(("/", os.sep)):
        raise UnsafeMemberError(f"{name!r} is an absolute path")
    destination = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, destination]) != root:
        raise UnsafeMemberError(f"{name!r} would be extracted outside {target!r}")
    if strict and member.isdev():  # character and block devices, FIFOs
        raise UnsafeMemberError(f"{name!r} is a special file")
    if member.islnk() or member.issym():
        link = member.linkname
        if os.path.isabs(link):
            if strict or member.islnk():
                raise UnsafeMemberError(f"{name!r} links to the absolute path {link!r}")
            return  # the ``tar`` filter keeps absolute symlink targets (caches of virtualenvs)
        base = root if member.islnk() else os.path.dirname(destination)
        if os.path.commonpath([root, os.path.realpath(os.path.join(base, link))]) != root:
            raise UnsafeMemberError(f"{name!r} links outside {target!r}")


def check_snapshot_archive(file: IO[bytes]) -> None:
    """Raise ``ArchiveError`` unless ``file`` is a whole gzip'd tar whose members stay inside
    the tree it unpacks to (no absolute paths, ``..``, devices or links leading out)."""
    try:
        file.seek(0)
        # The whole gzip stream first: its CRC is only checked when the end is read.
        with gzip.GzipFile(fileobj=file, mode="rb") as unpacked:
            while unpacked.read(SNAPSHOT_CHUNK_LIMIT):
                pass
        file.seek(0)
        with tarfile.open(fileobj=file, mode="r:gz") as archive:
            for member in archive:
                try:
                    check_member(member, "/snapshot")
                except UnsafeMemberError as error:
                    raise ArchiveError(
                        f"snapshot member {member.name!r} is refused: {error}"
                    ) from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise ArchiveError(f"the body is not a gzip'd tar archive: {error}") from None
    finally:
        file.seek(0)
