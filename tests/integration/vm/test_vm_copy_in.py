"""``VmInstance.copy_in`` over SFTP, against the simulated ``tart`` whose VMs are real sshd's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from domain.isolation import TartIsolation
from tests.integration.vm.conftest import RecordingSink, Simulator

pytestmark = pytest.mark.integration


async def test_copy_in_puts_a_directory_tree_with_its_symlinks_into_the_guest(
    simulator: Simulator, tmp_path: Path
) -> None:
    local = tmp_path / "source"
    (local / "src" / "deep").mkdir(parents=True)
    (local / "src" / "deep" / "a.txt").write_text("alpha\n")
    (local / "run.sh").write_text("echo ran\n")
    (local / "run.sh").chmod(0o755)
    os.symlink("src/deep/a.txt", local / "link")
    isolation = TartIsolation(
        image="ghcr.io/cirruslabs/macos-sonoma-base:latest",
        user=simulator.user.name,
        password=simulator.user.password,
    )
    instance = await simulator.factory("tart").create("copy-1", isolation)
    try:
        await instance.copy_in(str(local), instance.working_directory)
        await instance.copy_in(str(local / "src"), "nested/again")
        sink = RecordingSink()
        script = "cat src/deep/a.txt link nested/again/deep/a.txt && ./run.sh && readlink link"
        status = await instance.run_script(script, {}, sink)
    finally:
        await instance.close()
    assert (status, sink.data) == (0, b"alpha\nalpha\nalpha\nran\nsrc/deep/a.txt\n")
