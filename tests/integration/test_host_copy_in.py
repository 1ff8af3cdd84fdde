"""``HostInstance.copy_in``: a fetched tree lands in the task's directory, merged and in place."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from adapters.host.instance import HostInstanceFactory

pytestmark = pytest.mark.integration


def test_copy_in_moves_the_tree_into_the_working_directory_merging_what_is_there(
    tmp_path: Path,
) -> None:
    source = tmp_path / "fetched"
    (source / "src").mkdir(parents=True)
    (source / "src" / "new.txt").write_text("new\n")
    (source / "top.txt").write_text("fresh\n")
    os.symlink("src/new.txt", source / "link")

    async def scenario() -> Path:
        instance = await HostInstanceFactory(base_dir=str(tmp_path)).create("copy")
        working = Path(instance.working_directory)
        (working / "src").mkdir()
        (working / "src" / "kept.txt").write_text("kept\n")
        (working / "top.txt").write_text("stale\n")
        await instance.copy_in(str(source), instance.working_directory)
        await instance.copy_in(str(tmp_path / "empty-dir-that-is-made"), "sub/dir")
        return working

    (tmp_path / "empty-dir-that-is-made").mkdir()
    working = asyncio.run(scenario())
    assert (working / "src" / "kept.txt").read_text() == "kept\n"
    assert (working / "src" / "new.txt").read_text() == "new\n"
    assert (working / "top.txt").read_text() == "fresh\n"
    assert os.readlink(working / "link") == "src/new.txt"
    assert (working / "sub" / "dir").is_dir()
    assert [p for p in source.rglob("*") if not p.is_dir()] == []  # moved, not copied
