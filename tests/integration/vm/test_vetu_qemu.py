"""A Vetu task in a real Linux guest: the simulated ``vetu run`` boots QEMU, scripts run over SSH.

The instance comes from the production ``VmInstanceFactory``; only ``vetu`` is a stand-in, whose
``run`` boots the QEMU test guest (software emulation, OpenSSH inside) with the VM's CPU count
and memory, and whose ``ip`` prints the loopback address QEMU forwards port 22 from.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import pytest

from adapters.vm import WORKING_DIR, VmInstance
from domain.isolation import VetuIsolation
from tests.integration.vm.conftest import (
    SIMULATORS,
    RecordingSink,
    Simulator,
    qemu_processes,
    wait_for,
)
from tests.integration.vm.qemu_guest import GuestImage

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/cirruslabs/debian:latest"
GRACE_SECONDS = 1.0
# What a kill over SSH may add to the grace period in an emulated guest (a channel, a shell).
KILL_SLACK_SECONDS = 5.0


async def guest_ps(instance: VmInstance, pattern: str) -> str:
    """The guest's process lines matching ``pattern`` (its first letter bracketed for grep)."""
    sink = RecordingSink()
    bracketed = f"[{pattern[0]}]{pattern[1:]}"
    await instance.run_script(f"ps -o pid,args | grep '{bracketed}' || true", {}, sink)
    return sink.data.decode()


async def eventually_in_guest(instance: VmInstance, pattern: str, within: float = 30.0) -> None:
    """Poll the guest's process list until a process matches ``pattern``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await guest_ps(instance, pattern):
        assert loop.time() < deadline, f"no {pattern!r} in the guest within {within:g} s"


async def test_a_vetu_task_runs_its_scripts_for_real_in_a_qemu_linux_guest(
    qemu_simulator: Simulator, qemu_guest_image: GuestImage
) -> None:
    sim = qemu_simulator
    factory = sim.factory(
        "vetu",
        working_directory=WORKING_DIR,
        grace_seconds=GRACE_SECONDS,
        ssh_timeout=90.0,
    )
    isolation = VetuIsolation(
        image=IMAGE,
        user=qemu_guest_image.user,
        password=qemu_guest_image.password,
        cpu=1,
        memory=256,
    )
    loop = asyncio.get_running_loop()
    instance = await factory.create("41", isolation)
    try:
        [qemu] = qemu_processes(sim)
        arguments = qemu.cmdline()
        assert arguments[arguments.index("-smp") + 1] == "1"
        assert arguments[arguments.index("-m") + 1] == "256"
        assert f"hostfwd=tcp:{instance.ip}:22-:22" in " ".join(arguments)

        sink = RecordingSink()
        env = {**instance.base_environment(), "GREETING": "hello from the host"}
        script = 'echo $GREETING\nuname -s\necho "$CIRRUS_VM_ID"\npwd\nid -u\n'
        assert await instance.run_script(script, env, sink) == 0
        assert sink.data.decode() == (
            f"hello from the host\nLinux\n{instance.name}\n{WORKING_DIR}\n0\n"
        )

        sink = RecordingSink()
        assert await instance.run_script("echo leaving\nexit 3", {}, sink) == 3
        assert sink.data == b"leaving\n"

        sink = RecordingSink()
        assert await instance.run_script("echo first\nfalse\necho never", {}, sink) == 1
        assert sink.data == b"first\n"

        await instance.write_file(f"{WORKING_DIR}/notes/hello.txt", b"one\ntwo words\n")
        sink = RecordingSink()
        assert await instance.run_script("cat notes/hello.txt", {}, sink) == 0
        assert sink.data == b"one\ntwo words\n"

        sink = RecordingSink()
        running = asyncio.create_task(instance.run_script("echo up; sleep 1000", {}, sink))
        await eventually_in_guest(instance, "sleep 1000")
        cancelled_at = loop.time()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert loop.time() - cancelled_at < GRACE_SECONDS + KILL_SLACK_SECONDS
        assert sink.data == b"up\n"
        assert await guest_ps(instance, "sleep 1000") == ""

        # A script that ignores SIGINT (its sleep inherits that) lives out the grace period.
        running = asyncio.create_task(
            instance.run_script("trap '' INT; sleep 1001", {}, RecordingSink())
        )
        await eventually_in_guest(instance, "sleep 1001")
        cancelled_at = loop.time()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        waited = loop.time() - cancelled_at
        assert GRACE_SECONDS <= waited < GRACE_SECONDS + KILL_SLACK_SECONDS
        assert await guest_ps(instance, "sleep 1001") == ""
    finally:
        await instance.close()

    assert qemu_processes(sim) == []
    assert sim.vms("vetu") == []
    assert sim.state_records() == []


@pytest.mark.parametrize("ending", ["vetu stop", "SIGKILL to the group of vetu run"])
def test_ending_a_qemu_vm_leaves_no_qemu_process(qemu_simulator: Simulator, ending: str) -> None:
    sim = qemu_simulator
    name = "cirrus-cli-ending-qemu"
    assert sim.cli("vetu", "clone", IMAGE, name).returncode == 0
    assert sim.cli("vetu", "set", name, "--cpu", "1", "--memory", "256").returncode == 0
    run = subprocess.Popen(
        [str(SIMULATORS / "vetu"), "run", name],
        env=sim.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # as the worker starts it
    )
    try:
        ip = sim.cli("vetu", "ip", "--wait", "30", name)
        assert ip.returncode == 0, ip.stderr
        [qemu] = qemu_processes(sim)
        assert f"hostfwd=tcp:{ip.stdout.strip()}:22-:22" in " ".join(qemu.cmdline())

        if ending == "vetu stop":
            stopped = sim.cli("vetu", "stop", "--timeout", "5", name)
            assert stopped.returncode == 0, stopped.stderr
            assert qemu_processes(sim) == []  # stop returns once the VM is down
        else:
            os.killpg(run.pid, signal.SIGKILL)
        assert wait_for(lambda: qemu_processes(sim), within=10.0) == []
        assert run.wait(timeout=10.0) == (0 if ending == "vetu stop" else -signal.SIGKILL)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert sim.cli("vetu", "delete", name).returncode == 0
    assert sim.vms("vetu") == []
