"""The QEMU test guest boots, runs scripts over SSH like a VM isolation does, and stops cleanly."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import asyncssh
import pytest

from tests.integration.vm.qemu_guest import (
    GuestBootError,
    GuestImage,
    RunningGuest,
    boot_guest,
    connect,
    free_tcp_port,
    log_tail,
    qemu_processes_forwarding,
    stop_guest,
    wait_for_ssh,
)

pytestmark = pytest.mark.integration

# A task script as the VM launch writes it to a login shell's stdin: exported variables (quoted,
# not escaped), commands over several lines, then `exit`, which propagates the last status.
TASK_SCRIPT = """\
export CIRRUS_TASK_NAME="qemu guest"
export GREETING="hello from the host"
cd /tmp
echo "task=$CIRRUS_TASK_NAME"
for word in $GREETING; do
  echo "word=$word"
done
echo "cwd=$(pwd) user=$(id -u)" >&2
test "$GREETING" = "hello from the host" && sh -c 'exit 7'
exit
"""


async def booted(guest: RunningGuest) -> None:
    """Wait until the guest answers SSH, failing with its console when it does not."""
    try:
        await wait_for_ssh(guest.ssh_port, guest.user, guest.password, guest=guest.process)
    except Exception as error:
        pytest.fail(f"{error}\n{log_tail(guest.log_path)}")


async def test_the_guest_runs_the_debian_kernel_it_was_built_with(
    qemu_guest_image: GuestImage, qemu_guest: RunningGuest
) -> None:
    await booted(qemu_guest)
    async with await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password) as ssh:
        result = await ssh.run("uname -a", check=True, timeout=30)
    assert isinstance(result.stdout, str)
    assert result.stdout.startswith("Linux qemu-guest ")
    assert qemu_guest_image.kernel_version in result.stdout
    assert result.exit_status == 0


async def test_each_command_leads_its_own_process_group_as_on_a_real_vm(
    qemu_guest: RunningGuest,
) -> None:
    # The VM isolation kills what a script leaves behind by signalling the script's group.
    await booted(qemu_guest)
    async with await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password) as ssh:
        result = await ssh.run("echo $$ $(cut -d ' ' -f 5,6 /proc/$$/stat)", check=True, timeout=30)
    assert isinstance(result.stdout, str)
    pid, group, session = result.stdout.split()
    assert pid == group == session


async def test_a_script_on_a_login_shell_sees_its_env_and_reports_its_exit_status(
    qemu_guest: RunningGuest,
) -> None:
    await booted(qemu_guest)
    async with await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password) as ssh:
        process = await ssh.create_process()  # a shell session without a PTY, like the agent launch
        process.stdin.write(TASK_SCRIPT)
        process.stdin.write_eof()
        result = await process.wait(timeout=30)
    assert result.stdout == ("task=qemu guest\nword=hello\nword=from\nword=the\nword=host\n")
    assert result.stderr == "cwd=/tmp user=0\n"
    assert result.exit_status == 7


async def test_a_file_uploaded_over_sftp_runs_in_the_guest(qemu_guest: RunningGuest) -> None:
    await booted(qemu_guest)
    async with await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password) as ssh:
        async with ssh.start_sftp_client() as sftp:
            await sftp.makedirs("/tmp/cirrus-ci", exist_ok=True)
            async with sftp.open("/tmp/cirrus-ci/cirrus", "w") as remote:
                await remote.write('#!/bin/sh\necho "agent $*"\n')
            await sftp.chmod("/tmp/cirrus-ci/cirrus", 0o700)
        result = await ssh.run("/tmp/cirrus-ci/cirrus agent -task-id 42", check=True, timeout=30)
    assert result.stdout == "agent agent -task-id 42\n"


async def test_stopping_the_guest_leaves_no_qemu_process_and_closes_the_port(
    qemu_guest: RunningGuest,
) -> None:
    await booted(qemu_guest)
    assert [p.pid for p in qemu_processes_forwarding(qemu_guest.ssh_port)] == [
        qemu_guest.process.pid
    ]

    stop_guest(qemu_guest.process)

    assert qemu_guest.process.returncode is not None
    assert qemu_processes_forwarding(qemu_guest.ssh_port) == []
    with pytest.raises(ConnectionRefusedError):
        await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password)


async def test_a_wrong_password_is_refused(qemu_guest: RunningGuest) -> None:
    await booted(qemu_guest)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password + "-wrong")


async def test_a_reverse_forward_lets_the_guest_reach_a_server_on_the_host(
    qemu_guest: RunningGuest,
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nfrom host\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    host_port = server.sockets[0].getsockname()[1]
    try:
        await booted(qemu_guest)
        async with await connect(qemu_guest.ssh_port, qemu_guest.user, qemu_guest.password) as ssh:
            # As the VM launch does for a local API endpoint: a guest port chosen by the guest.
            listener = await ssh.forward_remote_port("127.0.0.1", 0, "127.0.0.1", host_port)
            guest_port = listener.get_port()
            result = await ssh.run(
                f"wget -q -O - http://127.0.0.1:{guest_port}/", check=True, timeout=30
            )
            listener.close()
            await listener.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert guest_port > 0
    assert result.stdout == "from host\r\n"


async def test_a_guest_can_answer_on_port_22_of_another_loopback_address(
    qemu_guest_image: GuestImage, tmp_path: Path
) -> None:
    # The VM simulators give each VM its own 127.x.y.z on port 22, so `vetu ip` prints an address
    # and the isolation's port stays at its default.
    address = f"127.{random.randint(16, 250)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    log_path = tmp_path / "guest-serial.log"
    process = boot_guest(qemu_guest_image.directory, 22, log_path, ssh_address=address)
    try:
        try:
            await wait_for_ssh(
                22,
                qemu_guest_image.user,
                qemu_guest_image.password,
                address=address,
                guest=process,
            )
        except Exception as error:
            pytest.fail(f"{error}\n{log_tail(log_path)}")
        async with await connect(
            22, qemu_guest_image.user, qemu_guest_image.password, address=address
        ) as ssh:
            result = await ssh.run("hostname", check=True, timeout=30)
        assert result.stdout == "qemu-guest\n"
        assert [p.pid for p in qemu_processes_forwarding(22, address)] == [process.pid]
    finally:
        stop_guest(process)
    assert qemu_processes_forwarding(22, address) == []


async def test_waiting_for_a_guest_whose_port_is_taken_fails_as_soon_as_qemu_exits(
    qemu_guest_image: GuestImage, tmp_path: Path
) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    port = free_tcp_port()
    squatter = await asyncio.start_server(never_answer, "127.0.0.1", port)
    log_path = tmp_path / "guest-serial.log"
    process = boot_guest(qemu_guest_image.directory, port, log_path)
    try:
        with pytest.raises(GuestBootError, match="QEMU exited with 1"):
            await wait_for_ssh(
                port, qemu_guest_image.user, qemu_guest_image.password, 30, guest=process
            )
    finally:
        stop_guest(process)
        squatter.close()
        await squatter.wait_closed()
    assert "Could not set up host forwarding rule" in log_tail(log_path)
