"""Test double of the ``tart`` and ``vetu`` command lines, with real OpenSSH servers as guests.

Run as ``vm_simulator.py <tart|vetu> <command> args…`` (through the ``tart``/``vetu`` wrappers
next to it). VM state lives on disk, one directory per VM under ``$CIRRUS_SIM_HOME/<tool>/``.
Every invocation is appended as one JSON line (argv and selected environment) to
``$CIRRUS_SIM_LOG``. ``run`` boots the "guest": a real sshd on its own loopback address, in the
foreground until ``stop`` (SIGTERM) or a signal, killing sshd and every guest process on exit
(it is their child subreaper). Output and errors follow the real tools: results on stdout,
``Error: …`` on stderr with exit status 1.

Environment: ``CIRRUS_SIM_USER`` (the guest's SSH user), ``CIRRUS_SIM_BOOT_DELAY`` (seconds
before sshd starts), ``CIRRUS_SIM_MODE`` (``normal``; ``no-ip``: never an address;
``no-ssh``: an address at once but no sshd), ``CIRRUS_SIM_SHARED_ROOT`` (where ``run`` links
each ``--dir`` share as ``<root>/<name>``), ``CIRRUS_SIM_OS`` (what ``get`` reports),
``CIRRUS_SIM_QEMU_GUEST`` (a built QEMU guest's directory, see ``qemu_guest.py``: ``run`` boots
that real Linux guest instead of sshd, with the VM's ``--cpu``/``--memory``, its sshd forwarded
from port 22 of the VM's loopback address; the guest's own login then applies, not the user's).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

import psutil

from tests.integration.vm import sshd

LOGGED_ENV = ("TART_NO_AUTO_PRUNE", "TRACEPARENT", "TRACESTATE", "CIRRUS_SENTRY_TAGS")
PR_SET_CHILD_SUBREAPER = 36
# How long QEMU may take to listen on the forwarded port (it does so before the guest boots).
QEMU_START_SECONDS = 10.0

# Flags of each command: name -> whether it takes a value.
RUN_FLAGS = {
    "tart": {
        "--no-graphics": False,
        "--no-clipboard": False,
        "--no-audio": False,
        "--root-disk-opts": True,
        "--net-softnet": False,
        "--net-softnet-allow": True,
        "--nested": False,
        "--dir": True,
    },
    "vetu": {"--net-bridged": True, "--net-host": False, "--net-host-mtu": True, "--device": True},
}
SET_FLAGS = {
    "tart": {
        "--random-mac": False,
        "--cpu": True,
        "--memory": True,
        "--disk-size": True,
        "--display": True,
    },
    "vetu": {"--cpu": True, "--memory": True, "--disk-size": True},
}


class Failure(Exception):
    """Ends the command with ``Error: <message>`` on stderr and exit status 1."""


def home(tool: str) -> Path:
    root = Path(os.environ.get("CIRRUS_SIM_HOME", "/tmp/cirrus-sim")) / tool
    root.mkdir(parents=True, exist_ok=True)
    return root


def vm_dir(tool: str, name: str, must_exist: bool = True) -> Path:
    path = home(tool) / name
    if must_exist and not (path / "config.json").exists():
        raise Failure(f'the specified VM "{name}" does not exist')
    return path


def record(tool: str, argv: list[str]) -> None:
    log = os.environ.get("CIRRUS_SIM_LOG")
    if not log:
        return
    env = {key: os.environ[key] for key in LOGGED_ENV if key in os.environ}
    line = json.dumps({"tool": tool, "argv": argv, "env": env, "pid": os.getpid()}) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def parse(args: list[str], flags: dict[str, bool]) -> tuple[list[tuple[str, str]], list[str]]:
    """Split ``args`` into (flag, value) pairs and positionals; unknown flags fail."""
    options: list[tuple[str, str]] = []
    positionals: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("--"):
            name, has_inline, inline = arg.partition("=")
            if name not in flags:
                raise Failure(f"Unknown option '{name}'")
            if flags[name]:
                if has_inline:
                    value = inline
                else:
                    index += 1
                    if index >= len(args):
                        raise Failure(f"Missing value for '{name}'")
                    value = args[index]
            else:
                value = ""
            options.append((name, value))
        else:
            positionals.append(arg)
        index += 1
    return options, positionals


def one_positional(positionals: list[str], what: str) -> str:
    if len(positionals) != 1:
        raise Failure(f"Missing expected argument '<{what}>'")
    return positionals[0]


def running_pid(path: Path) -> int | None:
    try:
        pid = int((path / "run.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return pid


def load(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((path / "config.json").read_text())
    return config


def save(path: Path, config: dict[str, Any]) -> None:
    (path / "config.json").write_text(json.dumps(config))


def cmd_pull(tool: str, args: list[str]) -> None:
    image = one_positional(parse(args, {})[1], "remote-name")
    if "does-not-exist" in image:
        raise Failure(f"failed to pull {image}: repository not found")
    print(f"pulling {image}...")


def cmd_clone(tool: str, args: list[str]) -> None:
    _, positionals = parse(args, {"--insecure": False, "--concurrency": True})
    if len(positionals) != 2:
        raise Failure("Missing expected argument '<new-name>'")
    image, name = positionals
    if "does-not-exist" in image:
        raise Failure(f'the specified VM "{image}" does not exist')
    path = vm_dir(tool, name, must_exist=False)
    if path.exists():
        raise Failure(f'the specified VM "{name}" already exists')
    path.mkdir()
    default_os = "darwin" if tool == "tart" else "linux"
    config = {
        "image": image,
        "os": os.environ.get("CIRRUS_SIM_OS", default_os),
        "cpu": 4,
        "memory": 8192,
        "disk": 50,
        "display": "1024x768",
        "mac": "7e:00:00:00:00:01",
    }
    save(path, config)
    sshd.make_host_key(path / "hostkey")


def cmd_set(tool: str, args: list[str]) -> None:
    options, positionals = parse(args, SET_FLAGS[tool])
    path = vm_dir(tool, one_positional(positionals, "name"))
    config = load(path)
    for flag, value in options:
        if flag == "--random-mac":
            config["mac"] = "7e:" + ":".join(f"{byte:02x}" for byte in os.urandom(5))
            continue
        if flag == "--display":
            config["display"] = value
            continue
        if not value.isdigit():
            raise Failure(f"The value '{value}' is invalid for '{flag}'")
        if tool == "vetu" and flag == "--cpu" and int(value) > 255:
            raise Failure(f'invalid argument "{value}" for "--cpu" flag: value out of range')
        config[{"--cpu": "cpu", "--memory": "memory", "--disk-size": "disk"}[flag]] = int(value)
    save(path, config)


def cmd_list(tool: str, args: list[str]) -> None:
    options, _ = parse(args, {"--quiet": False, "--format": True, "--source": True})
    names = sorted(p.name for p in home(tool).iterdir() if (p / "config.json").exists())
    if ("--quiet", "") in options:
        for name in names:
            print(name)
    elif ("--format", "json") in options:
        entries = [
            {
                "Source": "local",
                "Name": name,
                "Disk": load(home(tool) / name)["disk"],
                "Size": 20,
                "Accessed": "2024-01-01T00:00:00Z",
                "Running": running_pid(home(tool) / name) is not None,
                "State": "running" if running_pid(home(tool) / name) else "stopped",
            }
            for name in names
        ]
        print(json.dumps(entries))
    else:
        print("Source\tName\tDisk\tSize\tState")
        for name in names:
            state = "running" if running_pid(home(tool) / name) else "stopped"
            print(f"local\t{name}\t50\t20\t{state}")


def cmd_get(tool: str, args: list[str]) -> None:
    _, positionals = parse(args, {"--format": True})
    path = vm_dir(tool, one_positional(positionals, "name"))
    config = load(path)
    running = running_pid(path) is not None
    print(
        json.dumps(
            {
                "OS": config["os"],
                "CPU": config["cpu"],
                "Memory": config["memory"],
                "Disk": config["disk"],
                "DiskFormat": "raw",
                "Size": "20.000",
                "Display": config["display"],
                "Running": running,
                "State": "running" if running else "stopped",
            }
        )
    )


def cmd_ip(tool: str, args: list[str]) -> None:
    options, positionals = parse(args, {"--wait": True, "--resolver": True})
    path = vm_dir(tool, one_positional(positionals, "name"))
    wait = float(dict(options).get("--wait", "0") or 0)
    deadline = time.monotonic() + wait
    no_ssh = os.environ.get("CIRRUS_SIM_MODE") == "no-ssh"
    while True:
        try:
            address = (path / "address").read_text().strip()
        except OSError:
            address = ""
        if address and running_pid(path) and (no_ssh or sshd.accepts(address, 22)):
            print(address)
            return
        if time.monotonic() >= deadline:
            raise Failure("no IP address found, is your VM running?")
        time.sleep(0.05)


def cmd_stop(tool: str, args: list[str]) -> None:
    options, positionals = parse(args, {"--timeout": True})
    path = vm_dir(tool, one_positional(positionals, "name"))
    pid = running_pid(path)
    if pid is None:
        raise Failure("VM is not running")
    timeout = float(dict(options).get("--timeout", "30") or 30)
    os.kill(pid, signal.SIGTERM)
    if not exits_within(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def exits_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` ends within ``seconds``; a zombie (not our child) has ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            return True
        time.sleep(0.02)
    return False


def cmd_delete(tool: str, args: list[str]) -> None:
    _, positionals = parse(args, {})
    if not positionals:
        raise Failure("Missing expected argument '<name> ...'")
    for name in positionals:
        path = vm_dir(tool, name)
        if running_pid(path) is not None:
            raise Failure(f'the VM "{name}" is running')
        shutil.rmtree(path)


class Guest:
    """The running "VM": an sshd and whatever its sessions started."""

    def __init__(self, tool: str, name: str, options: list[tuple[str, str]]) -> None:
        self.tool = tool
        self.name = name
        self.path = vm_dir(tool, name)
        self.options = options
        self.links: list[Path] = []
        self.daemon: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def boot(self) -> None:
        mode = os.environ.get("CIRRUS_SIM_MODE", "normal")
        self.wait(float(os.environ.get("CIRRUS_SIM_BOOT_DELAY", "0") or 0))
        self.share_directories()
        if self.stopping or mode == "no-ip":
            return
        if mode == "no-ssh":
            (self.path / "address").write_text(sshd.random_loopback_address())
            return
        qemu_guest = os.environ.get("CIRRUS_SIM_QEMU_GUEST")
        if qemu_guest:
            self.daemon, address = start_qemu(Path(qemu_guest), self.path, load(self.path))
        else:
            user = os.environ.get("CIRRUS_SIM_USER", sshd.TEST_USER)
            self.daemon, address = sshd.start_sshd(self.path, user)
        (self.path / "address").write_text(address)

    def share_directories(self) -> None:
        root = os.environ.get("CIRRUS_SIM_SHARED_ROOT")
        if not root:
            return
        for flag, value in self.options:
            if flag == "--dir":
                share, source = value.split(":")[:2]
                link = Path(root, share)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)
                self.links.append(link)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)

    def shut_down(self) -> None:
        for path in (self.path / "address", self.path / "run.pid"):
            path.unlink(missing_ok=True)
        for link in self.links:
            link.unlink(missing_ok=True)
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
        # Every guest process is our descendant (or was reparented to us): none may survive.
        me = psutil.Process()
        for _ in range(100):
            children = me.children(recursive=True)
            if not children:
                break
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            psutil.wait_procs(children, timeout=1)
            reap_zombies()


def start_qemu(
    guest: Path, path: Path, config: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], str]:
    """Boot the QEMU guest built in ``guest`` for the VM at ``path``; return QEMU and the address.

    QEMU stays in our process group (no session of its own), so that killing the group of
    ``run`` ends it too. The guest's sshd is forwarded from port 22 of a free random loopback
    address; an address taken meanwhile makes QEMU exit at once, and another one is tried.
    Raises RuntimeError when QEMU does not come up.
    """
    # Imported here: only ``run`` in QEMU mode needs it (and its heavier imports).
    from tests.integration.vm.qemu_guest import qemu_command

    for _ in range(10):
        address = sshd.random_loopback_address()
        if not sshd.port_free(address, 22):
            continue
        command = qemu_command(
            guest,
            22,
            path / "serial.log",
            ssh_address=address,
            cpus=int(config["cpu"]),
            memory_mib=int(config["memory"]),
        )
        with open(path / "qemu.log", "ab") as log:
            qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + QEMU_START_SECONDS
        while time.monotonic() < deadline and qemu.poll() is None:
            if sshd.accepts(address, 22, timeout=0.2):
                return qemu, address
            time.sleep(0.02)
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
    raise RuntimeError(f"QEMU did not start, see {path / 'qemu.log'}")


def reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cmd_run(tool: str, args: list[str]) -> None:
    options, positionals = parse(args, RUN_FLAGS[tool])
    name = one_positional(positionals, "name")
    path = vm_dir(tool, name)
    if running_pid(path) is not None:
        raise Failure(f'VM "{name}" is already running')
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    guest = Guest(tool, name, options)

    def stop(signum: int, frame: object) -> None:
        guest.stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    (path / "run.json").write_text(json.dumps(args))
    (path / "run.pid").write_text(str(os.getpid()))
    try:
        guest.boot()
        while not guest.stopping:
            time.sleep(0.05)
            reap_zombies()
    finally:
        guest.shut_down()


COMMANDS = {
    "pull": cmd_pull,
    "clone": cmd_clone,
    "set": cmd_set,
    "list": cmd_list,
    "get": cmd_get,
    "ip": cmd_ip,
    "run": cmd_run,
    "stop": cmd_stop,
    "delete": cmd_delete,
}


def main(argv: list[str]) -> int:
    tool, *args = argv
    record(tool, args)
    if not args:
        print(f"Error: Missing expected argument '<subcommand>' of {tool}", file=sys.stderr)
        return 64
    command = COMMANDS.get(args[0])
    try:
        if command is None:
            raise Failure(f"Unexpected argument '{args[0]}'")
        command(tool, args[1:])
    except Failure as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
