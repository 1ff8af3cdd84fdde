"""A real OpenSSH server on a loopback address, and the password user the simulated VMs accept.

Imported by the test fixtures (``tests.integration.vm.sshd``) and by the Tart/Vetu simulators
(as a plain module next to them): stdlib only. Each simulated VM gets its own ``/usr/sbin/sshd``
on a random ``127.x.y.z`` port 22, with its own host key, pid file and log, and only the test
user allowed in with a password (``UsePAM no``: the shadow password is checked directly).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
TEST_USER = "cirrus-vm-test"
SETUP_HINT = "run scripts/setup-sshd.sh as root"


def make_host_key(path: Path) -> None:
    """An ed25519 host key without a passphrase at ``path`` (and ``path.pub``)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def random_loopback_address() -> str:
    """A random 127.x.y.z address (lo answers the whole 127.0.0.0/8 on Linux)."""
    return f"127.{random.randint(16, 250)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def port_free(address: str, port: int) -> bool:
    """Whether ``address:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def accepts(address: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``address:port``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def write_config(directory: Path, address: str, port: int, user: str) -> Path:
    """The sshd configuration of one VM; returns its path."""
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress {address}:{port}\n"
        f"HostKey {directory / 'hostkey'}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication no\n"
        "UsePAM no\n"
        "PermitRootLogin no\n"
        f"AllowUsers {user}\n"
        "StrictModes no\n"
        "MaxSessions 64\n"
        "MaxStartups 64\n"
        "Subsystem sftp internal-sftp\n"
    )
    return config


def start_sshd(directory: Path, user: str, port: int = 22) -> tuple[subprocess.Popen[bytes], str]:
    """Start sshd for one VM on a free random loopback address; return it and the address.

    The daemon runs in the foreground (``-D``) as a child of the caller, logging to
    ``directory/sshd.log``. Raises RuntimeError when no daemon could be started.
    """
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} is missing: {SETUP_HINT}")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    for _ in range(10):
        address = random_loopback_address()
        if not port_free(address, port):
            continue
        config = write_config(directory, address, port, user)
        with open(directory / "sshd.log", "ab") as log:
            daemon = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and daemon.poll() is None:
            if accepts(address, port, timeout=0.2):
                return daemon, address
            time.sleep(0.02)
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait()
    raise RuntimeError(f"sshd did not start, see {directory / 'sshd.log'}")
