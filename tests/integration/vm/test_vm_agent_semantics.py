"""The agent's ways of running commands inside a VM over SSH (Tart simulator, real sshd):
the login shell's environment as the expansion base, ``$CIRRUS_ENV`` files in the guest,
``CIRRUS_SHELL`` (a shell or ``direct``) and ``CIRRUS_WORKING_DIR``."""

from __future__ import annotations

import pytest

from tests.integration.vm.conftest import RecordingSink, Simulator
from tests.integration.vm.test_tart_instance import tart_isolation

pytestmark = pytest.mark.integration


async def test_a_vm_probes_its_login_environment_and_keeps_cirrus_env_files_in_the_guest(
    simulator: Simulator,
) -> None:
    instance = await simulator.factory("tart").create("env", tart_isolation(simulator))
    try:
        probed = await instance.probe_environment()
        assert probed["USER"] == simulator.user.name or probed["LOGNAME"] == simulator.user.name
        assert probed["HOME"]
        assert probed["CIRRUS_VM_ID"] == instance.name
        path = await instance.create_env_file()
        sink = RecordingSink()
        script = 'echo "A=1" >>"$CIRRUS_ENV"; echo "B=two words" >>"$CIRRUS_ENV"'
        assert await instance.run_script(script, {"CIRRUS_ENV": path}, sink) == 0
        assert await instance.take_env_file(path) == "A=1\nB=two words\n"
        assert await instance.take_env_file(path) == ""  # removed
    finally:
        await instance.close()


async def test_a_vm_script_honours_cirrus_shell_direct_and_cirrus_working_dir(
    simulator: Simulator,
) -> None:
    instance = await simulator.factory("tart").create("shell", tart_isolation(simulator))
    try:
        traced = RecordingSink()
        env = {"CIRRUS_SHELL": "sh -x", "CIRRUS_WORKING_DIR": "/tmp/cirrus-vm-wd/sub"}
        assert await instance.run_script("pwd", env, traced) == 0
        assert b"+ pwd\n" in traced.data
        assert b"/tmp/cirrus-vm-wd/sub\n" in traced.data
        direct = RecordingSink()
        line = "printf '%s|' 'a b' ;not-a-shell"
        assert await instance.run_script(line, {"CIRRUS_SHELL": "direct"}, direct) == 0
        assert direct.data == b"a b|;not-a-shell|"
        missing = RecordingSink()
        env = {"CIRRUS_SHELL": "no-such-shell-here"}
        assert await instance.run_script("true", env, missing) != 0
        assert b"no-such-shell-here" in missing.data
    finally:
        await instance.close()
