"""``adapters.safe_tar`` keeps every member inside the target, with the standard library's
filters (Python >= 3.11.4) and without them (Debian bookworm's 3.11.2, where the image may
be built): both ways are run on real archives in tmp_path."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from adapters import safe_tar
from adapters.safe_tar import UnsafeMemberError, check_member, extract_members

pytestmark = pytest.mark.integration


# The fallback always; the standard library's filters where this Python has them.
MODES = ["fallback", *(["filters"] if safe_tar.HAS_FILTERS else [])]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with the standard library's filters and with this module's fallback."""
    if request.param == "fallback":
        monkeypatch.setattr(safe_tar, "HAS_FILTERS", False)
    return str(request.param)


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    """A tar header of ``kind`` named ``name`` (``link``: a link's target)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> tarfile.TarFile:
    """An in-memory tar holding ``members`` with their contents, opened for reading."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for info, content in members:
            info.size = len(content) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    data.seek(0)
    return tarfile.open(fileobj=data, mode="r")


def test_ordinary_files_directories_and_inner_links_are_extracted(
    mode: str, tmp_path: Path
) -> None:
    with archive(
        (member("dir", tarfile.DIRTYPE), b""),
        (member("dir/a.txt"), b"hello"),
        (member("dir/link", tarfile.SYMTYPE, "a.txt"), b""),
    ) as tar:
        extract_members(tar, tar.getmembers(), str(tmp_path))
    assert (tmp_path / "dir" / "a.txt").read_text() == "hello"
    assert (tmp_path / "dir" / "link").read_text() == "hello"


@pytest.mark.parametrize(
    ("info", "strict"),
    [
        (member("../escape.txt"), True),
        (member("dir/../../escape.txt"), False),
        (member("up", tarfile.SYMTYPE, "../../etc"), True),
        (member("abs", tarfile.SYMTYPE, "/etc/passwd"), True),
        (member("hard", tarfile.LNKTYPE, "/etc/passwd"), True),
        (member("fifo", tarfile.FIFOTYPE), True),
    ],
    ids=["dotdot", "dotdot-inside-a-name", "symlink-out", "absolute-symlink", "hardlink", "fifo"],
)
def test_members_leading_out_or_special_are_refused(
    mode: str, tmp_path: Path, info: tarfile.TarInfo, strict: bool
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(UnsafeMemberError):
        check_member(info, str(target), strict=strict)
    assert not (tmp_path / "escape.txt").exists()


def test_a_cache_may_keep_an_absolute_symlink_but_a_snapshot_may_not(
    mode: str, tmp_path: Path
) -> None:
    link = member("venv/bin/python", tarfile.SYMTYPE, "/usr/bin/python3")
    check_member(link, str(tmp_path), strict=False)
    with pytest.raises(UnsafeMemberError):
        check_member(link, str(tmp_path), strict=True)
