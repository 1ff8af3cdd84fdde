"""A real Linux guest under QEMU (software emulation) reached over SSH on a loopback address.

``scripts/build-qemu-guest.sh`` builds the guest into a cache directory (``vmlinuz``,
``initramfs.cpio.gz``, ``manifest.json``); the session fixture ``qemu_guest_image`` runs it once
per test session (the fixtures are registered in this directory's ``conftest.py``; the simulated
``vetu``/``tart run`` boots the guest with ``qemu_command`` when ``CIRRUS_SIM_QEMU_GUEST`` is set).
``boot_guest`` starts QEMU with user-mode networking that forwards one port on
127.0.0.1 (or another 127.x.y.z) to the guest's sshd; the guest's own 10.0.2.x addresses exist
only inside QEMU and are never addressed from the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-qemu-guest.sh"
# Where the session fixture builds the guest; CIRRUS_QEMU_GUEST_CACHE moves it elsewhere.
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "qemu-guest"
QEMU_BINARY = "qemu-system-x86_64"
BUILD_TIMEOUT_SECONDS = 600.0
# A TCG boot until sshd lets a login in takes 4-7 s on the project's machines (up to 11 s seen
# on a busy one); the margin covers a loaded CI host running several guests at once.
BOOT_TIMEOUT_SECONDS = 90.0
# While the guest boots, QEMU accepts a connection on the forwarded port and holds it until the
# guest's network is up, so a probe waits only this long for the server's banner and then tries
# again; a booted guest sends it within a few milliseconds.
BANNER_TIMEOUT_SECONDS = 1.0


class GuestBootError(RuntimeError):
    """The guest did not answer SSH in time, or QEMU exited first."""


@dataclass(frozen=True, slots=True)
class GuestImage:
    """A built guest: the files QEMU boots and the login its SSH server accepts."""

    directory: Path
    kernel: Path
    initramfs: Path
    user: str
    password: str
    kernel_version: str


def load_guest_image(cache_dir: Path) -> GuestImage:
    """Read the manifest of a guest built by ``scripts/build-qemu-guest.sh`` into ``cache_dir``."""
    manifest = json.loads((cache_dir / "manifest.json").read_text(encoding="utf-8"))
    image = GuestImage(
        directory=cache_dir,
        kernel=cache_dir / "vmlinuz",
        initramfs=cache_dir / "initramfs.cpio.gz",
        user=str(manifest["user"]),
        password=str(manifest["password"]),
        kernel_version=str(manifest["kernel_version"]),
    )
    for path in (image.kernel, image.initramfs):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: rebuild with {BUILD_SCRIPT}")
    return image


def build_guest_image(cache_dir: Path) -> GuestImage:
    """Run the build script (a no-op when the guest is up to date) and load what it built.

    Fails the calling test, never skips it: the test command builds the guest, so a guest that
    cannot be built is a broken setup."""
    try:
        built = subprocess.run(
            ["sh", str(BUILD_SCRIPT), str(cache_dir)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BUILD_SCRIPT} took more than {BUILD_TIMEOUT_SECONDS:.0f} s")
    if built.returncode != 0:
        pytest.fail(
            f"{BUILD_SCRIPT} {cache_dir} exited with {built.returncode} "
            f"(it needs root on Debian bookworm):\n{built.stderr[-4000:]}{built.stdout[-2000:]}"
        )
    return load_guest_image(cache_dir)


@pytest.fixture(scope="session", name="qemu_guest_image")
def qemu_guest_image_fixture() -> GuestImage:
    """The QEMU guest, built once per session into ``.cache/qemu-guest`` (or the directory in
    ``CIRRUS_QEMU_GUEST_CACHE``)."""
    cache_dir = Path(os.environ.get("CIRRUS_QEMU_GUEST_CACHE") or DEFAULT_CACHE_DIR)
    return build_guest_image(cache_dir)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def qemu_command(
    cache_dir: Path,
    ssh_port: int,
    log_path: Path,
    *,
    ssh_address: str = "127.0.0.1",
    cpus: int = 1,
    memory_mib: int = 256,
) -> list[str]:
    """The ``qemu-system-x86_64`` command line that boots the guest in ``cache_dir``.

    Software emulation only (``/dev/kvm`` on these machines is PVM, which stock kernels cannot
    use); the serial console goes to ``log_path``; guest port 22 is forwarded from
    ``ssh_address:ssh_port`` (a loopback address) and nothing else of the guest is reachable."""
    if not ssh_address.startswith("127."):
        raise ValueError(f"the guest's SSH port is only forwarded from loopback, not {ssh_address}")
    return [
        QEMU_BINARY,
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-smp",
        str(cpus),
        "-m",
        str(memory_mib),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{log_path}",
        "-kernel",
        str(cache_dir / "vmlinuz"),
        "-initrd",
        str(cache_dir / "initramfs.cpio.gz"),
        "-append",
        # no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can time
        # out and panic ("IO-APIC + timer doesn't work!"); the emulated timer is fine.
        "console=ttyS0 quiet rdinit=/init panic=-1 no_timer_check",
        "-netdev",
        f"user,id=n0,hostfwd=tcp:{ssh_address}:{ssh_port}-:22",
        # romfile= : no iPXE option ROM needed (and none may be installed).
        "-device",
        "virtio-net-pci,netdev=n0,romfile=",
        "-device",
        "virtio-rng-pci",
    ]


def boot_guest(
    cache_dir: Path,
    ssh_port: int,
    log_path: Path,
    *,
    ssh_address: str = "127.0.0.1",
    cpus: int = 1,
    memory_mib: int = 256,
) -> subprocess.Popen[bytes]:
    """Start QEMU on the guest in ``cache_dir``; SSH answers on ``ssh_address:ssh_port`` once
    booted.

    The serial console is written to ``log_path``; QEMU's own messages go to
    ``log_path`` + ``.qemu``. QEMU runs in its own session so ``stop_guest`` can end it alone.
    A port that is already taken makes QEMU exit at once (``wait_for_ssh`` with ``guest=`` then
    fails fast)."""
    command = qemu_command(
        cache_dir, ssh_port, log_path, ssh_address=ssh_address, cpus=cpus, memory_mib=memory_mib
    )
    with open(f"{log_path}.qemu", "wb") as qemu_log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=qemu_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_guest(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """End QEMU (SIGTERM, then SIGKILL after ``timeout`` seconds) and reap it; idempotent."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def qemu_processes_forwarding(
    ssh_port: int, ssh_address: str = "127.0.0.1"
) -> list[psutil.Process]:
    """Live QEMU processes whose command line forwards ``ssh_address:ssh_port``."""
    rule = f"hostfwd=tcp:{ssh_address}:{ssh_port}-:22"
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if cmdline and cmdline[0].endswith(QEMU_BINARY) and any(rule in arg for arg in cmdline):
            found.append(process)
    return found


async def connect(
    port: int,
    user: str,
    password: str,
    *,
    address: str = "127.0.0.1",
    timeout_seconds: float = 10.0,
) -> asyncssh.SSHClientConnection:
    """An SSH connection to the guest on ``address:port`` with password login, any host key;
    ``timeout_seconds`` bounds the TCP connect and, separately, the login."""
    return await asyncssh.connect(
        address,
        port=port,
        username=user,
        password=password,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        preferred_auth="password",
        connect_timeout=timeout_seconds,
        login_timeout=timeout_seconds,
    )


async def read_ssh_banner(address: str, port: int) -> bytes:
    """The first line an SSH server at ``address:port`` sends; TimeoutError when none comes
    within ``BANNER_TIMEOUT_SECONDS``, ConnectionError when the connection is dropped first."""
    async with asyncio.timeout(BANNER_TIMEOUT_SECONDS):
        reader, writer = await asyncio.open_connection(address, port)
        try:
            line = await reader.readline()
        finally:
            writer.close()
            await writer.wait_closed()
    if not line.startswith(b"SSH-"):
        raise ConnectionError(f"{address}:{port} sent no SSH banner: {line[:80]!r}")
    return line


async def wait_for_ssh(
    port: int,
    user: str,
    password: str,
    timeout_seconds: float = BOOT_TIMEOUT_SECONDS,
    *,
    address: str = "127.0.0.1",
    guest: subprocess.Popen[bytes] | None = None,
) -> float:
    """Poll until a password login on ``address:port`` runs ``true``; return the seconds waited.

    QEMU accepts connections on the forwarded port before the guest listens, then holds or drops
    them, so each attempt first waits briefly for the server's banner, and every failure until
    the deadline is retried. Raises
    ``GuestBootError`` at the deadline, or at once when ``guest`` (the QEMU process) has
    exited."""
    started = time.monotonic()
    deadline = started + timeout_seconds
    last_error: BaseException | None = None
    while True:
        if guest is not None and guest.poll() is not None:
            raise GuestBootError(f"QEMU exited with {guest.returncode} before SSH answered")
        try:
            await read_ssh_banner(address, port)
            async with await connect(port, user, password, address=address) as connection:
                await connection.run("true", check=True, timeout=10)
            return time.monotonic() - started
        except (OSError, asyncssh.Error, TimeoutError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            raise GuestBootError(
                f"no SSH login on {address}:{port} within {timeout_seconds:.0f} s "
                f"(last error: {last_error!r})"
            )
        await asyncio.sleep(0.25)


def log_tail(log_path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a guest's serial console and QEMU's messages, for failures."""
    parts = []
    for path in (log_path, Path(f"{log_path}.qemu")):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} ---\n" + "\n".join(text))
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class RunningGuest:
    """A booted guest: its QEMU process and how to log in."""

    process: subprocess.Popen[bytes]
    ssh_port: int
    user: str
    password: str
    log_path: Path


@pytest.fixture(name="qemu_guest")
def qemu_guest_fixture(qemu_guest_image: GuestImage, tmp_path: Path) -> Iterator[RunningGuest]:
    """A freshly started guest (SSH not yet waited for); QEMU is stopped after the test."""
    port = free_tcp_port()
    log_path = tmp_path / "guest-serial.log"
    process = boot_guest(qemu_guest_image.directory, port, log_path)
    try:
        yield RunningGuest(
            process=process,
            ssh_port=port,
            user=qemu_guest_image.user,
            password=qemu_guest_image.password,
            log_path=log_path,
        )
    finally:
        stop_guest(process)
