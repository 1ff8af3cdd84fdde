"""The QEMU test guest boots, runs scripts over SSH like a VM isolation does, and stops cleanly."""

from __future__ import annotations

import asyncssh
import pytest

from tests.integration.vm.qemu_guest import (
    GuestImage,
    RunningGuest,
    connect,
    log_tail,
    qemu_processes_forwarding,
    stop_guest,
    wait_for_ssh,
)

# The fixtures ``qemu_guest`` and ``qemu_guest_image``: pytest finds them among this module's names.
from tests.integration.vm.qemu_guest import (
    qemu_guest_fixture as qemu_guest_fixture,
)
from tests.integration.vm.qemu_guest import (
    qemu_guest_image_fixture as qemu_guest_image_fixture,
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
