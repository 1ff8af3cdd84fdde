"""The Tart isolation against the simulated ``tart``, whose VMs are real OpenSSH servers.

Every test checks the exact command lines the simulator recorded, and (through the
``simulator`` fixture) that no simulator, sshd or guest process survives it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.vm import VmStateFile
from adapters.vm.state import VmRecord
from domain.errors import InstanceError
from domain.isolation import TartIsolation, TartVolume
from domain.policy import AllowedIsolations, SecurityPolicy, TartPolicy
from tests.integration.vm.conftest import (
    RecordingSink,
    Simulator,
    guest_processes,
    split_runs,
    wait_until,
)

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/cirruslabs/macos-sonoma-base:latest"
RUN_PREFIX = [
    "run",
    "--no-graphics",
    "--no-clipboard",
    "--no-audio",
    "--root-disk-opts",
    "sync=none",
]
TRACE = {"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def tart_isolation(sim: Simulator, **fields: object) -> TartIsolation:
    """A Tart isolation that logs in as the simulator's guest user."""
    return TartIsolation(
        image=IMAGE,
        user=sim.user.name,
        password=sim.user.password,
        **fields,  # type: ignore[arg-type]
    )


def exists(path: Path) -> bool:
    """Whether ``path`` exists (a dangling symlink counts)."""
    return os.path.lexists(path)


def read(path: Path) -> bytes:
    """The contents of ``path``."""
    return path.read_bytes()


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def start_sleeper() -> subprocess.Popen[bytes]:
    """A live process that is not this one."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def assert_nothing_left(sim: Simulator) -> None:
    """No VM on disk and no entry in the worker's state file."""
    assert sim.vms("tart") == []
    assert sim.state_records() == []


async def test_a_tart_task_boots_with_the_exact_command_lines_and_runs_scripts_over_ssh(
    simulator: Simulator,
) -> None:
    factory = simulator.factory("tart")
    isolation = tart_isolation(
        simulator, cpu=2, memory=4096, disk_size=60, display="1920x1080", nested=True
    )
    instance = await factory.create("42", isolation, cli_env=TRACE)
    vm = instance.name
    try:
        assert vm.startswith("cirrus-cli-42-")
        assert instance.base_environment() == {"CIRRUS_VM_ID": vm}
        assert instance.guest_os == "darwin"
        assert simulator.state_records() == [{"tool": "tart", "name": vm, "owner_pid": os.getpid()}]
        sink = RecordingSink()
        script = 'echo "hello $GREETING"; pwd; echo oops >&2; exit 3'
        status = await instance.run_script(script, {"GREETING": "it's me"}, sink)
        assert status == 3
        assert sink.data == f"hello it's me\n{instance.working_directory}\noops\n".encode()
        failing = RecordingSink()
        assert await instance.run_script("false\necho not reached", {}, failing) == 1
        assert failing.data == b""
    finally:
        await instance.close()
    await instance.close()  # idempotent

    invocations = simulator.invocations("tart")
    # ``run`` keeps running while ``ip`` is called: the two processes may log in either order.
    argvs, runs = split_runs([entry["argv"] for entry in invocations])
    assert runs == [[*RUN_PREFIX, "--nested", vm]]
    assert argvs == [
        ["pull", IMAGE],
        ["clone", IMAGE, vm],
        ["set", vm, "--random-mac"],
        ["set", vm, "--cpu", "2"],
        ["set", vm, "--memory", "4096"],
        ["set", vm, "--disk-size", "60"],
        ["set", vm, "--display", "1920x1080"],
        ["ip", "--wait", "30", vm],
        ["get", "--format", "json", vm],
        ["stop", "--timeout", "5", vm],
        ["delete", vm],
    ]
    assert invocations[1]["env"] == {"TART_NO_AUTO_PRUNE": "", **TRACE}
    assert all(entry["env"].get("TRACEPARENT") == TRACE["TRACEPARENT"] for entry in invocations)
    assert "TART_NO_AUTO_PRUNE" not in invocations[0]["env"]
    assert_nothing_left(simulator)


async def test_softnet_forced_by_the_policy_gets_the_allow_list(simulator: Simulator) -> None:
    policy = SecurityPolicy(
        AllowedIsolations(
            tart=TartPolicy(force_softnet=True, softnet_allow=("10.0.0.0/8", "192.168.0.0/16"))
        )
    )
    factory = simulator.factory("tart", policy=policy)
    instance = await factory.create("7", tart_isolation(simulator), lazy_pull=True)
    await instance.close()
    argvs = simulator.argvs("tart")
    assert argvs[0][0] == "clone"  # lazy pull: no pull at all
    runs = [argv for argv in argvs if argv[0] == "run"]
    assert runs == [
        [
            *RUN_PREFIX,
            "--net-softnet",
            "--net-softnet-allow",
            "10.0.0.0/8,192.168.0.0/16",
            instance.name,
        ]
    ]
    assert_nothing_left(simulator)


async def test_volumes_are_shared_read_only_when_asked_and_linked_to_their_targets(
    simulator: Simulator,
) -> None:
    existing = simulator.guest_dir / "cache"
    existing.mkdir()
    (existing / "hello.txt").write_text("from the host\n")
    missing = simulator.guest_dir / "made-by-the-worker"
    volumes = (
        TartVolume(
            name="cache",
            source=str(existing),
            target=str(simulator.guest_dir / "c"),
            read_only=True,
        ),
        TartVolume(source=str(missing), target=str(simulator.guest_dir / "m")),
    )
    isolation = tart_isolation(simulator, volumes=volumes)
    instance = await simulator.factory("tart").create("8", isolation)
    try:
        assert exists(missing)
        sink = RecordingSink()
        guest = simulator.guest_dir
        script = f"cat {guest}/c/hello.txt; test -d {guest}/m && echo linked"
        assert await instance.run_script(script, {}, sink) == 0
        assert sink.data == b"from the host\nlinked\n"
    finally:
        await instance.close()
    assert isolation.volumes[1].name == ""  # the task's isolation is never changed
    run = next(argv for argv in simulator.argvs("tart") if argv[0] == "run")
    dirs = [run[i + 1] for i, arg in enumerate(run) if arg == "--dir"]
    assert dirs[0] == f"cache:{existing}:ro"
    generated, _, source = dirs[1].partition(":")
    assert len(generated) == 36
    assert source == str(missing)
    assert not exists(missing)  # created for the task, removed at close
    assert exists(existing)
    assert not exists(simulator.guest_dir / "c")
    assert not exists(simulator.guest_dir / "m")
    assert_nothing_left(simulator)


async def test_cancelling_a_script_kills_it_in_the_vm_and_close_deletes_the_vm(
    simulator: Simulator,
) -> None:
    instance = await simulator.factory("tart").create("9", tart_isolation(simulator))
    try:
        sink = RecordingSink()
        # Durations no other test uses: tests running alongside (containers, other VMs) may
        # run `sleep 1001` under the same uid.
        script = "trap 'echo interrupted' INT\necho started\nsleep 7391 & wait\nsleep 7392"
        running = asyncio.create_task(instance.run_script(script, {}, sink))
        await wait_until(
            lambda: b"started" in sink.data and bool(guest_processes(simulator, "sleep 7391"))
        )
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert guest_processes(simulator, "sleep 739") == []
        # The connection is still usable after a cancelled script.
        after = RecordingSink()
        assert await instance.run_script("echo still here", {}, after) == 0
        assert after.data == b"still here\n"
    finally:
        await instance.close()
    assert_nothing_left(simulator)


async def test_a_script_cannot_hold_the_channel_open_with_leftover_processes(
    simulator: Simulator,
) -> None:
    instance = await simulator.factory("tart").create("10", tart_isolation(simulator))
    try:
        sink = RecordingSink()
        status = await asyncio.wait_for(
            instance.run_script("sleep 1003 &\necho done", {}, sink), timeout=15
        )
        assert (status, sink.data) == (0, b"done\n")
        assert guest_processes(simulator, "sleep 1003") == []
    finally:
        await instance.close()


async def test_background_scripts_stream_until_stopped_and_files_are_written(
    simulator: Simulator,
) -> None:
    instance = await simulator.factory("tart").create("11", tart_isolation(simulator))
    try:
        await instance.write_file("sub/dir/data.txt", b"payload\n")
        written = Path(instance.working_directory, "sub/dir/data.txt")
        assert read(written) == b"payload\n"
        sink = RecordingSink()
        handle = await instance.start_background("echo tick; sleep 1004", {}, sink)
        await wait_until(lambda: sink.data == b"tick\n")
        await handle.stop()
        assert handle.done
        assert guest_processes(simulator, "sleep 1004") == []
        forgotten = await instance.start_background("sleep 1005", {}, RecordingSink())
        await wait_until(lambda: bool(guest_processes(simulator, "sleep 1005")))
    finally:
        await instance.close()  # also stops the background script still running
    assert forgotten.done
    assert_nothing_left(simulator)


async def test_warm_up_runs_the_script_and_a_timeout_is_no_failure(simulator: Simulator) -> None:
    instance = await simulator.factory("tart").create(
        "ignored", tart_isolation(simulator), ident="standby"
    )
    try:
        assert instance.name.startswith("cirrus-cli-standby-")
        marker = simulator.guest_dir / "warmed"
        await instance.warm_up(f"touch {marker}", timeout_seconds=30)
        assert marker.exists()
        await instance.warm_up("sleep 1006", timeout_seconds=0.5)
        assert guest_processes(simulator, "sleep 1006") == []
        with pytest.raises(InstanceError, match=r"^warm-up script failed: exit status 4$"):
            await instance.warm_up("exit 4", timeout_seconds=30)
    finally:
        await instance.close()
    assert_nothing_left(simulator)


async def test_orphan_cleanup_removes_only_the_vms_of_dead_owners_in_our_state_file(
    simulator: Simulator, tmp_path: Path
) -> None:
    for name in ("cirrus-cli-dead-1", "cirrus-cli-alive-1", "cirrus-cli-not-ours-1"):
        assert simulator.cli("tart", "clone", IMAGE, name).returncode == 0
    ended = dead_pid()
    sleeper = start_sleeper()
    try:
        state = VmStateFile(simulator.home / "worker-state.json")
        state.add(VmRecord("tart", "cirrus-cli-dead-1", ended))
        state.add(VmRecord("tart", "cirrus-cli-alive-1", sleeper.pid))
        state.add(VmRecord("tart", "cirrus-cli-already-gone", ended))
        state.add(VmRecord("vetu", "cirrus-cli-dead-1", ended))
        deleted = await simulator.factory("tart").cleanup_orphans()
        assert deleted == ["cirrus-cli-dead-1"]
        assert simulator.vms("tart") == ["cirrus-cli-alive-1", "cirrus-cli-not-ours-1"]
        assert [(r.tool, r.name) for r in state.records()] == [
            ("tart", "cirrus-cli-alive-1"),
            ("vetu", "cirrus-cli-dead-1"),
        ]
    finally:
        sleeper.kill()
        sleeper.wait()
    for name in simulator.vms("tart"):
        simulator.cli("tart", "delete", name)


async def test_the_ip_wait_is_bounded_and_names_the_vm(simulator: Simulator) -> None:
    simulator.env["CIRRUS_SIM_MODE"] = "no-ip"
    factory = simulator.factory("tart", ip_timeout=1.5)
    with pytest.raises(
        InstanceError,
        match=r"^timed out while trying to retrieve the VM cirrus-cli-12-\S+ IP \(waited 1.5 s\)$",
    ):
        await factory.create("12", tart_isolation(simulator))
    assert_nothing_left(simulator)
    assert [argv[0] for argv in simulator.argvs("tart")][-2:] == ["stop", "delete"]


async def test_the_ssh_wait_is_bounded_and_says_what_failed(simulator: Simulator) -> None:
    simulator.env["CIRRUS_SIM_MODE"] = "no-ssh"
    factory = simulator.factory("tart", ssh_timeout=1.5)
    with pytest.raises(
        InstanceError,
        match=r"^timed out after 1.5 s while waiting for SSH on VM cirrus-cli-13-\S+ "
        r"at 127\.[\d.]+:22: .+",
    ):
        await factory.create("13", tart_isolation(simulator))
    assert_nothing_left(simulator)


async def test_a_wrong_password_fails_at_once(simulator: Simulator) -> None:
    isolation = TartIsolation(image=IMAGE, user=simulator.user.name, password="wrong")
    with pytest.raises(
        InstanceError, match=r"^SSH login as 'cirrus-vm-test' to VM \S+ was refused"
    ):
        await asyncio.wait_for(simulator.factory("tart").create("14", isolation), timeout=20)
    assert_nothing_left(simulator)


async def test_a_clone_failure_reports_the_tools_first_error_line(simulator: Simulator) -> None:
    isolation = TartIsolation(image="example.com/does-not-exist:1", user="admin", password="admin")
    with pytest.raises(InstanceError) as raised:
        await simulator.factory("tart").create("15", isolation)
    assert str(raised.value) == (
        "tart command returned non-zero exit code: "
        '"Error: the specified VM \\"example.com/does-not-exist:1\\" does not exist"'
    )
    assert [argv[0] for argv in simulator.argvs("tart")] == ["pull", "clone", "delete"]
    assert_nothing_left(simulator)


async def test_a_missing_tart_is_reported_as_in_the_original(simulator: Simulator) -> None:
    env = {**simulator.env, "PATH": "/nonexistent"}
    factory = simulator.factory("tart", base_env=env)
    with pytest.raises(InstanceError) as raised:
        await factory.create("16", tart_isolation(simulator))
    assert str(raised.value) == (
        "tart command not found: tart command not found in PATH, make sure Tart is installed"
    )
    assert simulator.state_records() == []


async def test_a_vetu_isolation_is_refused_by_a_tart_factory(simulator: Simulator) -> None:
    from domain.isolation import VetuIsolation

    with pytest.raises(InstanceError, match="cannot run a vetu isolation"):
        await simulator.factory("tart").create("17", VetuIsolation(image=IMAGE))
    assert simulator.argvs("tart") == []
