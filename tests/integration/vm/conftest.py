"""Fixtures of the Tart/Vetu tests: the simulators on PATH, leak checks.

The guest's SSH user is the session fixture ``guest_user`` (``guest_user.py``, registered in
``tests/integration/conftest.py``). Each test's simulated VMs, sshd daemons and guest processes must
all be gone after it: the ``simulator`` fixture fails the test otherwise (and kills them).
The QEMU guest's fixtures ``qemu_guest_image`` and ``qemu_guest`` are registered here as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from adapters.vm import VmInstanceFactory
from domain.policy import SecurityPolicy
from tests.integration.child_environment import without_collector
from tests.integration.vm.guest_user import GuestUser
from tests.integration.vm.qemu_guest import QEMU_BINARY, GuestImage
from tests.integration.vm.qemu_guest import qemu_guest_fixture as qemu_guest_fixture
from tests.integration.vm.qemu_guest import (
    qemu_guest_image_fixture as qemu_guest_image_fixture,
)

SIMULATORS = Path(__file__).parent / "simulators"


@dataclass
class Simulator:
    """One test's simulated ``tart``/``vetu``: its home, invocation log and environment."""

    home: Path
    log: Path
    guest_dir: Path
    user: GuestUser
    env: dict[str, str] = field(default_factory=dict)

    @property
    def shared_root(self) -> str:
        """Where ``tart run`` links each ``--dir`` share in the (simulated) guest."""
        return self.env["CIRRUS_SIM_SHARED_ROOT"]

    def invocations(self, tool: str) -> list[dict[str, Any]]:
        """Every recorded invocation of ``tool``: ``{"argv": [...], "env": {...}}``."""
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [entry for entry in entries if entry["tool"] == tool]

    def argvs(self, tool: str) -> list[list[str]]:
        """The argument lists of every recorded invocation of ``tool``."""
        return [entry["argv"] for entry in self.invocations(tool)]

    def vms(self, tool: str) -> list[str]:
        """The names of the VMs that exist on disk."""
        root = self.home / tool
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "config.json").exists())

    def cli(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the simulated tool directly (to prepare VMs a test did not create)."""
        return subprocess.run(
            [str(SIMULATORS / tool), *args], env=self.env, capture_output=True, text=True
        )

    def factory(self, tool: str, **options: Any) -> VmInstanceFactory:
        """A factory on the simulator, with short timeouts and a per-test state file."""
        defaults: dict[str, Any] = {
            "policy": SecurityPolicy(),
            "state_file": str(self.home / "worker-state.json"),
            "ip_timeout": 30.0,
            "ssh_timeout": 30.0,
            "grace_seconds": 1.0,
            "working_directory": str(self.guest_dir / "working-dir"),
            "shared_files_root": self.shared_root,
            "base_env": self.env,
        }
        defaults.update(options)
        return VmInstanceFactory(tool, **defaults)  # type: ignore[arg-type]

    def state_records(self) -> list[dict[str, Any]]:
        """The entries of the per-test state file."""
        path = self.home / "worker-state.json"
        if not path.exists():
            return []
        vms: list[dict[str, Any]] = json.loads(path.read_text())["vms"]
        return vms


def leftovers(sim: Simulator) -> list[psutil.Process]:
    """Processes of this test: simulators and sshd daemons of its home, guest processes."""
    found = []
    marker = str(sim.home)
    for process in psutil.process_iter(["cmdline", "uids", "environ"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            uids = process.info["uids"]
            environ = process.info["environ"] or {}
        except psutil.Error:
            continue
        if process.pid == os.getpid():
            continue
        if (
            marker in cmdline
            or environ.get("CIRRUS_SIM_HOME") == marker
            or (uids is not None and uids.real == sim.user.uid)
            or f"sshd: {sim.user.name}" in cmdline
        ):
            found.append(process)
    return found


@pytest.fixture
def simulator(tmp_path: Path, guest_user: GuestUser) -> Iterator[Simulator]:
    """The simulators with a private home; fails the test if anything of it is left running."""
    guest_dir = Path(f"/tmp/cirrus-vm-test-{uuid.uuid4().hex[:12]}")
    guest_dir.mkdir(mode=0o755)
    os.chown(guest_dir, guest_user.uid, -1)
    home = tmp_path / "sim"
    home.mkdir()
    env = without_collector(os.environ)
    env.update(
        PATH=f"{SIMULATORS}{os.pathsep}{env.get('PATH', os.defpath)}",
        CIRRUS_SIM_HOME=str(home),
        CIRRUS_SIM_LOG=str(tmp_path / "invocations.jsonl"),
        CIRRUS_SIM_USER=guest_user.name,
        CIRRUS_SIM_PYTHON=sys.executable,
        CIRRUS_SIM_SHARED_ROOT=str(guest_dir / "shared"),
    )
    sim = Simulator(home, tmp_path / "invocations.jsonl", guest_dir, guest_user, env)
    try:
        yield sim
    finally:
        left = wait_for(lambda: leftovers(sim), within=10.0)
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(guest_dir, ignore_errors=True)
        assert not left, f"processes left behind: {[p.pid for p in left]}"


@pytest.fixture
def qemu_simulator(simulator: Simulator, qemu_guest_image: GuestImage) -> Simulator:
    """The simulators in QEMU mode: each ``vetu run``/``tart run`` boots the real QEMU guest."""
    simulator.env["CIRRUS_SIM_QEMU_GUEST"] = str(qemu_guest_image.directory)
    return simulator


def qemu_processes(sim: Simulator) -> list[psutil.Process]:
    """The live QEMU processes that the simulators of this test started."""
    found = []
    for process in psutil.process_iter(["cmdline", "status", "environ"]):
        try:
            cmdline = process.info["cmdline"] or []
            environ = process.info["environ"] or {}
        except psutil.Error:
            continue
        if process.info["status"] == psutil.STATUS_ZOMBIE or not cmdline:
            continue
        if cmdline[0].endswith(QEMU_BINARY) and environ.get("CIRRUS_SIM_HOME") == str(sim.home):
            found.append(process)
    return found


def wait_for(probe: Callable[[], list[psutil.Process]], within: float) -> list[psutil.Process]:
    """Poll ``probe`` until it finds nothing or the time is up; return its last finding."""
    import time

    deadline = time.monotonic() + within
    found = probe()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = probe()
    return found


class RecordingSink:
    """Keeps every chunk it is given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


async def wait_until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``condition`` until it holds, failing after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


def guest_processes(sim: Simulator, text: str) -> list[str]:
    """Command lines of the guest user's processes that contain ``text``."""
    found = []
    for process in psutil.process_iter(["cmdline", "uids"]):
        uids = process.info["uids"]
        cmdline = " ".join(process.info["cmdline"] or [])
        if uids is not None and uids.real == sim.user.uid and text in cmdline:
            found.append(cmdline)
    return found


def split_runs(argvs: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """The invocations other than ``run``, and the ``run`` invocations."""
    return [a for a in argvs if a[0] != "run"], [a for a in argvs if a[0] == "run"]
