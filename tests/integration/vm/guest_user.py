"""The SSH user of the simulated VMs, as one session fixture for every integration test.

The guest user ``cirrus-vm-test`` is created when missing and gets a fresh random password for
the session, taken away again at its end; a lock file serialises test sessions that would
otherwise change each other's password. The fixture is registered once, in
``tests/integration/conftest.py``: registered in several modules it would run once per module
within one session, and the second run would wait forever for the lock the first one holds.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.vm.sshd import SETUP_HINT, SSHD, TEST_USER

LOCK_FILE = "/tmp/cirrus-vm-test.lock"


@dataclass(frozen=True)
class GuestUser:
    """The user the simulated VMs let in over SSH."""

    name: str
    password: str
    uid: int


@pytest.fixture(scope="session")
def guest_user() -> Iterator[GuestUser]:
    """The test user with a random password for this session (needs root and sshd)."""
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: {SETUP_HINT}")
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root: sshd checks the guest user's password")
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", TEST_USER], check=True)
        password = secrets.token_urlsafe(18)
        subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True)
        uid = int(subprocess.run(["id", "-u", TEST_USER], capture_output=True, text=True).stdout)
        try:
            yield GuestUser(TEST_USER, password, uid)
        finally:
            subprocess.run(["usermod", "-p", "!", TEST_USER], check=False)
