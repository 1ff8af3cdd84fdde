"""``TarSourceFiles`` (what ``fs`` reads in a snapshot build) and the build list's query."""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from app.controller.build_sources import BuildQuery, build_query
from app.controller.snapshot_files import TarSourceFiles
from domain.build import TaskStatus


def _archive(members: list[tarfile.TarInfo], contents: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            data = contents.get(member.name, b"")
            member.size = len(data) if member.isfile() else 0
            archive.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_files_are_read_by_their_path_from_the_root() -> None:
    contents = {"./ci/build.sh": b"make\n", "README": b"hi"}
    files = TarSourceFiles(_archive([_file(name) for name in contents], contents))
    assert files.read("ci/build.sh") == b"make\n"
    assert files.read("/ci/build.sh") == b"make\n"
    assert files.read("../README") == b"hi"  # above the root is the root
    assert files.read("ci") is None
    assert files.read("missing") is None


def test_directories_are_listed_also_without_entries_of_their_own() -> None:
    members = [_file("a/b/c.txt"), _file("a/d.txt"), _directory("empty"), _link("a/l", "d.txt")]
    files = TarSourceFiles(_archive(members, {"a/b/c.txt": b"c", "a/d.txt": b"d"}))
    assert files.list("") == ["a", "empty"]
    assert files.list(".") == ["a", "empty"]
    assert files.list("a") == ["b", "d.txt", "l"]
    assert files.list("a/b") == ["c.txt"]
    assert files.list("empty") == []
    assert files.list("a/d.txt") is None
    assert files.list("nowhere") is None


def test_links_and_files_over_the_size_limit_read_as_missing() -> None:
    members = [_file("big"), _link("link", "big")]
    files = TarSourceFiles(_archive(members, {"big": b"x" * 100}), max_file_bytes=99)
    assert files.read("big") is None
    assert files.read("link") is None


def test_the_build_query_has_defaults_and_reads_every_filter() -> None:
    assert build_query({}) == BuildQuery()
    query = build_query(
        {"repository": "o/n", "branch": "b", "status": "failed", "limit": "5", "before": "9"}
    )
    assert query == BuildQuery("o/n", "b", TaskStatus.FAILED, 5, "9")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit: '0' is not a number from 1 to 1000"),
        ({"limit": "1001"}, "limit: '1001' is not a number"),
        ({"limit": "x"}, "limit: 'x' is not a number"),
        ({"status": "DONE"}, "status: 'DONE' is not one of CREATED"),
        ({"colour": "red"}, "unknown query parameter 'colour'"),
    ],
)
def test_a_bad_build_query_names_the_parameter(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_query(params)
