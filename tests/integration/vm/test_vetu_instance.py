"""The Vetu isolation against the simulated ``vetu``, whose VMs are real OpenSSH servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from domain.errors import InstanceError
from domain.isolation import TartIsolation, VetuBridged, VetuHost, VetuIsolation
from tests.integration.vm.conftest import (
    RecordingSink,
    Simulator,
    guest_processes,
    split_runs,
    wait_until,
)

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/cirruslabs/ubuntu:latest"
TRACE = {"TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def vetu_isolation(sim: Simulator, **fields: object) -> VetuIsolation:
    """A Vetu isolation that logs in as the simulator's guest user."""
    return VetuIsolation(
        image=IMAGE,
        user=sim.user.name,
        password=sim.user.password,
        **fields,  # type: ignore[arg-type]
    )


def exists(path: Path) -> bool:
    """Whether ``path`` exists."""
    return path.exists()


def assert_nothing_left(sim: Simulator) -> None:
    """No VM on disk and no entry in the worker's state file."""
    assert sim.vms("vetu") == []
    assert sim.state_records() == []


async def test_a_vetu_task_boots_with_the_exact_command_lines_and_runs_scripts_over_ssh(
    simulator: Simulator,
) -> None:
    factory = simulator.factory("vetu", mtu=1400)
    isolation = vetu_isolation(simulator, cpu=3, memory=2048, disk_size=40, networking=VetuHost())
    instance = await factory.create(
        "21", isolation, run_args=("--device", "/dev/null"), cli_env=TRACE
    )
    vm = instance.name
    try:
        assert vm.startswith("cirrus-cli-21-")
        assert instance.guest_os == "linux"
        assert instance.attributes == {
            "image": IMAGE,
            "instance_type": "vetu",
            "instance_cpus": 3.0,
        }
        sink = RecordingSink()
        script = 'echo "$CIRRUS_VM_ID $EXTRA"; cd sub 2>/dev/null || pwd; exit 7'
        env = {**instance.base_environment(), "EXTRA": "a b  c"}
        assert await instance.run_script(script, env, sink) == 7
        assert sink.data == f"{vm} a b  c\n{instance.working_directory}\n".encode()
    finally:
        await instance.close()

    invocations = simulator.invocations("vetu")
    argvs, runs = split_runs([entry["argv"] for entry in invocations])
    assert runs == [["run", "--net-host", "--net-host-mtu", "1400", "--device", "/dev/null", vm]]
    assert argvs == [
        ["pull", IMAGE],
        ["clone", IMAGE, vm],
        ["set", vm, "--cpu", "3"],
        ["set", vm, "--memory", "2048"],
        ["set", vm, "--disk-size", "40"],
        ["ip", "--wait", "30", vm],
        ["stop", "--timeout", "5", vm],
        ["delete", vm],
    ]
    assert all(entry["env"] == TRACE for entry in invocations)  # no prune variable for Vetu
    assert_nothing_left(simulator)


async def test_bridged_networking_and_default_networking_flags(simulator: Simulator) -> None:
    factory = simulator.factory("vetu")
    bridged = await factory.create(
        "22", vetu_isolation(simulator, networking=VetuBridged("br0")), lazy_pull=True
    )
    await bridged.close()
    plain = await factory.create("23", vetu_isolation(simulator))
    await plain.close()
    runs = [argv for argv in simulator.argvs("vetu") if argv[0] == "run"]
    assert runs == [["run", "--net-bridged", "br0", bridged.name], ["run", plain.name]]
    assert simulator.argvs("vetu")[0][0] == "clone"  # lazy pull
    assert_nothing_left(simulator)


async def test_a_run_argument_vetu_rejects_fails_the_boot_with_its_error_line(
    simulator: Simulator,
) -> None:
    factory = simulator.factory("vetu")
    with pytest.raises(InstanceError) as raised:
        await factory.create("24", vetu_isolation(simulator), run_args=("--x",))
    assert str(raised.value) == (
        "vetu command returned non-zero exit code: \"Error: Unknown option '--x'\""
    )
    assert [argv[0] for argv in simulator.argvs("vetu")][-2:] == ["stop", "delete"]
    assert_nothing_left(simulator)


async def test_cancelling_a_vetu_script_kills_it_in_the_vm(simulator: Simulator) -> None:
    instance = await simulator.factory("vetu").create("25", vetu_isolation(simulator))
    try:
        sink = RecordingSink()
        running = asyncio.create_task(instance.run_script("echo up; sleep 1011", {}, sink))
        await wait_until(lambda: bool(guest_processes(simulator, "sleep 1011")))
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert sink.data == b"up\n"
        assert guest_processes(simulator, "sleep 1011") == []
    finally:
        await instance.close()
    assert_nothing_left(simulator)


async def test_closing_a_vm_with_a_running_script_ends_the_script(simulator: Simulator) -> None:
    instance = await simulator.factory("vetu").create("26", vetu_isolation(simulator))
    sink = RecordingSink()
    running = asyncio.create_task(instance.run_script("echo up; sleep 1012", {}, sink))
    await wait_until(lambda: bool(guest_processes(simulator, "sleep 1012")))
    await instance.close()
    with pytest.raises(InstanceError, match="lost the SSH connection"):
        await asyncio.wait_for(running, timeout=15)
    assert guest_processes(simulator, "sleep 1012") == []
    with pytest.raises(InstanceError, match="is closed"):
        await instance.run_script("true", {}, RecordingSink())
    assert_nothing_left(simulator)


async def test_the_vetu_warm_up_runs_its_script(simulator: Simulator) -> None:
    instance = await simulator.factory("vetu").create(
        "standby", vetu_isolation(simulator), ident="standby"
    )
    try:
        marker = simulator.guest_dir / "vetu-warmed"
        await instance.warm_up(f"echo warm >{marker}", timeout_seconds=0)
        assert exists(marker)
    finally:
        await instance.close()
    assert_nothing_left(simulator)


async def test_a_slow_boot_is_waited_for(simulator: Simulator) -> None:
    simulator.env["CIRRUS_SIM_BOOT_DELAY"] = "1.5"
    instance = await simulator.factory("vetu").create("27", vetu_isolation(simulator))
    try:
        sink = RecordingSink()
        assert await instance.run_script("echo booted", {}, sink) == 0
        assert sink.data == b"booted\n"
    finally:
        await instance.close()
    assert_nothing_left(simulator)


async def test_a_tart_isolation_is_refused_by_a_vetu_factory(simulator: Simulator) -> None:
    with pytest.raises(InstanceError, match="cannot run a tart isolation"):
        await simulator.factory("vetu").create("28", TartIsolation(image=IMAGE))
    assert simulator.argvs("vetu") == []
