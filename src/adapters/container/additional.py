"""Additional containers (``additional_containers:``): services run beside a task's container.

Each one joins the network namespace of the task's container (``--network container:<main>``),
so the task reaches it on ``localhost:<port>`` and no network of its own is made. It carries the
task's labels plus ``ADDITIONAL_LABEL``: the leftovers cleanup finds it like a task container and
removes it first (the engine refuses to remove a container others share the namespace of).

A service is ready when its ``readiness_command`` succeeds in it (run again until it does), or,
without one, when every port it declares is listening in the shared namespace (read from the
main container's ``/proc/<pid>/net/tcp*`` on the host, which needs no tool in any image). As the
original, ports are reached on their container port: ``host:container`` mappings are ignored.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path

from adapters.container.engine import ContainerEngine, first_error_line
from domain.errors import InstanceError
from domain.isolation import AdditionalContainer

ADDITIONAL_LABEL = "org.cirruslabs.cirrus-worker.additional-container"
DEFAULT_READINESS_SECONDS = 300.0
_POLL_SECONDS = 0.2
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def container_name(main: str, additional: AdditionalContainer) -> str:
    """The engine name of an additional container of the task container ``main``."""
    return f"{main}-{_UNSAFE_NAME_CHARS.sub('_', additional.name)[:40] or 'additional'}"


def wanted_ports(additional: AdditionalContainer) -> tuple[int, ...]:
    """The container ports a service declares, each once, in order."""
    ports = [mapping.container_port for mapping in additional.ports]
    ports.append(additional.container_port)
    return tuple(dict.fromkeys(port for port in ports if port > 0))


def listening_ports(proc_net_texts: Sequence[str]) -> set[int]:
    """The local ports in state LISTEN of ``/proc/<pid>/net/tcp`` and ``tcp6`` texts."""
    ports: set[int] = set()
    for text in proc_net_texts:
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN:
                _, _, port = fields[1].rpartition(":")
                ports.add(int(port, 16))
    return ports


def _environment_file(path: Path, additional: AdditionalContainer) -> None:
    lines = []
    for key, value in additional.environment:
        if "\n" in key or "\n" in value or "=" in key or not key:
            raise InstanceError(
                f"additional container {additional.name!r}: environment variable {key!r} "
                "cannot be passed to a container (a newline or '=' in it)"
            )
        lines.append(f"{key}={value}\n")
    path.write_text("".join(lines))
    path.chmod(0o600)


class AdditionalContainers:
    """Starts, readies and removes the additional containers of one task container."""

    def __init__(
        self,
        engine: ContainerEngine,
        main: str,
        labels: Sequence[str],
        host_root: Path,
        readiness_seconds: float = DEFAULT_READINESS_SECONDS,
    ) -> None:
        self._engine = engine
        self._main = main
        self._labels = list(labels)
        self._host_root = host_root
        self._readiness_seconds = readiness_seconds
        self.names: list[str] = []  # every container that may exist, for removal

    async def start(self, additionals: Sequence[AdditionalContainer]) -> None:
        """Start every additional container, then wait until each is ready.

        ``InstanceError`` names the container that failed; the caller removes them (``remove``).
        """
        for additional in additionals:
            await self._run(additional)
        pid = await self._main_pid() if any(map(wanted_ports, additionals)) else 0
        await asyncio.gather(*(self._until_ready(a, pid) for a in additionals))

    async def remove(self) -> None:
        """Remove every additional container (absent ones are no error)."""
        await self._engine.remove_containers(self.names)

    async def _run(self, additional: AdditionalContainer) -> None:
        name = container_name(self._main, additional)
        env_file = self._host_root / f"additional-{len(self.names)}.env"
        await asyncio.to_thread(_environment_file, env_file, additional)
        args = ["run", "--detach", "--name", name, *self._labels]
        args += ["--label", f"{ADDITIONAL_LABEL}={additional.name or name}"]
        args += ["--network", f"container:{self._main}", "--env-file", str(env_file)]
        args += ["--security-opt", "label=disable"]
        if additional.cpu > 0:
            args += ["--cpus", f"{additional.cpu:g}"]
        if additional.memory > 0:
            args += ["--memory", f"{additional.memory}m"]
        if await self._engine.image_exists(additional.image):
            args.insert(1, "--pull=never")
        self.names.append(name)
        result = await self._engine.run([*args, additional.image, *additional.command], check=False)
        if result.returncode != 0:
            raise InstanceError(
                f"cannot start additional container {additional.name!r} "
                f"({additional.image}): {first_error_line(result.stderr) or result.returncode}"
            )

    async def _main_pid(self) -> int:
        result = await self._engine.run(["inspect", "--format", "{{.State.Pid}}", self._main])
        text = result.stdout.strip()
        if not text.isdecimal() or int(text) <= 0:
            raise InstanceError(f"cannot find the process of container {self._main}")
        return int(text)

    async def _until_ready(self, additional: AdditionalContainer, pid: int) -> None:
        name = container_name(self._main, additional)
        ports = wanted_ports(additional)
        if not additional.readiness_command and not ports:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._readiness_seconds
        while True:
            if await self._ready(name, additional, ports, pid):
                return
            await self._ensure_running(name, additional)
            if loop.time() >= deadline:
                waited_for = (
                    f"its readiness command {' '.join(additional.readiness_command)!r}"
                    if additional.readiness_command
                    else f"port(s) {', '.join(map(str, ports))} to listen"
                )
                raise InstanceError(
                    f"additional container {additional.name!r} was not ready after "
                    f"{self._readiness_seconds:g} s (waited for {waited_for})"
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def _ready(
        self, name: str, additional: AdditionalContainer, ports: tuple[int, ...], pid: int
    ) -> bool:
        if additional.readiness_command:
            result = await self._engine.run(
                ["exec", name, *additional.readiness_command], check=False
            )
            return result.returncode == 0
        texts = await asyncio.to_thread(_read_proc_net, pid)
        return set(ports) <= listening_ports(texts)

    async def _ensure_running(self, name: str, additional: AdditionalContainer) -> None:
        state = await self._engine.run(
            ["inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", name], check=False
        )
        running, _, code = state.stdout.strip().partition(" ")
        if state.returncode == 0 and running == "true":
            return
        logs = await self._engine.run(["logs", "--tail", "5", name], check=False)
        tail = (logs.stdout + logs.stderr).strip().splitlines()
        raise InstanceError(
            f"additional container {additional.name!r} stopped before it was ready "
            f"(exit status {code or 'unknown'})" + (f": {tail[-1]}" if tail else "")
        )


def _read_proc_net(pid: int) -> list[str]:
    texts = []
    for name in ("tcp", "tcp6"):
        try:
            texts.append(Path(f"/proc/{pid}/net/{name}").read_text())
        except OSError:
            continue  # no IPv6 in the kernel: only tcp exists
    return texts
