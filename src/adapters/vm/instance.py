"""Tart and Vetu instances: a VM per task, booted with the tool's command line, used over SSH.

Creating an instance pulls, clones, configures and starts the VM, waits (bounded) for its IP
and its SSH server, runs the Tart share hooks and makes the working directory. Each script is
one SSH channel (see ``ssh_session``). Closing removes the hooks' links, stops the VM, kills
``<tool> run`` and deletes the VM; every VM is recorded in the worker's state file from before
its clone until its deletion, so that ``cleanup_orphans`` at start removes only our leftovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import asyncssh

from adapters.host.process import BackgroundScript, finish_despite_cancellation
from adapters.vm import sftp_copy, tart, vetu
from adapters.vm.cli import LongRunningCommand, Tool, VmCli, failure_message
from adapters.vm.sftp_copy import copy_tree
from adapters.vm.ssh_session import (
    RemoteScript,
    capture_command,
    connect_when_ready,
    login_shell_command,
    run_command,
)
from adapters.vm.state import VmRecord, VmStateFile
from domain.agent_environment import PRINT_ENVIRONMENT, parse_env_output
from domain.errors import InstanceError
from domain.isolation import Isolation, TartIsolation, VetuIsolation, instance_attributes
from domain.policy import SecurityPolicy, tart_softnet
from domain.ports import OutputSink

WORKING_DIR = "/tmp/cirrus-ci/working-dir"
DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "admin"
IP_WAIT_ARGUMENT = "30"
# Bounds of the close steps: the tool's own stop timeout plus slack, hooks, the SSH goodbye.
STOP_SECONDS = 5
STOP_SLACK_SECONDS = 20.0
RUN_EXIT_WAIT_SECONDS = 5.0
HOOK_SECONDS = 30.0
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_WRITE_FILE = 'mkdir -p "$(dirname "$1")" && cat >"$1"'

_log = logging.getLogger(__name__)


def vm_name(ident: str) -> str:
    """``cirrus-cli-<ident>-<uuid4>`` with ``ident`` made safe for a VM name."""
    safe = _UNSAFE_NAME_CHARS.sub("_", ident)[:64] or "task"
    return f"cirrus-cli-{safe}-{uuid.uuid4()}"


def guest_os(get_output: str) -> str:
    """The ``OS`` of ``tart get --format json`` (keys matched case-insensitively), else darwin."""
    try:
        document = json.loads(get_output)
    except ValueError:
        return "darwin"
    if isinstance(document, dict):
        for key, value in document.items():
            if key.lower() == "os" and isinstance(value, str) and value:
                return value
    return "darwin"


class VmInstanceFactory:
    """Creates Tart or Vetu VMs for tasks and the standby."""

    def __init__(
        self,
        tool: Literal["tart", "vetu"],
        *,
        policy: SecurityPolicy,
        state_file: str | os.PathLike[str],
        mtu: int = 0,
        ip_timeout: float = 600.0,
        ssh_timeout: float = 600.0,
        grace_seconds: float = 10.0,
        working_directory: str = WORKING_DIR,
        shared_files_root: str = tart.SHARED_FILES_ROOT,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self._tool: Tool = tool
        self._cli = VmCli(tool, base_env)
        self._policy = policy
        self._state = VmStateFile(state_file)
        self._mtu = mtu
        self._ip_timeout = ip_timeout
        self._ssh_timeout = ssh_timeout
        self._grace_seconds = grace_seconds
        self._working_directory = working_directory
        self._shared_files_root = shared_files_root

    @property
    def tool(self) -> Tool:
        """``tart`` or ``vetu``."""
        return self._tool

    async def pull(self, image: str, cli_env: Mapping[str, str] | None = None) -> None:
        """``<tool> pull <image>`` (the standby's pre-pull); ``InstanceError`` on failure."""
        await self._cli.run(["pull", image], cli_env)

    async def cleanup_orphans(self) -> list[str]:
        """Stop and delete the VMs our state file lists for dead owners; return those deleted.

        Call it at start, before creating any VM: records of this very process id (a restarted
        worker that got the same pid, e.g. pid 1 in a container) count as orphans too.
        """
        records = await asyncio.to_thread(self._state.orphans, self._tool)
        if not records:
            return []
        listed = await self._cli.run(["list", "--quiet"])
        existing = {line.strip() for line in listed.stdout.splitlines() if line.strip()}
        deleted = []
        for record in records:
            if record.name in existing:
                await self._cli.run(
                    ["stop", "--timeout", str(STOP_SECONDS), record.name], check=False
                )
                result = await self._cli.run(["delete", record.name], check=False)
                if result.returncode != 0:
                    _log.warning("cannot delete the orphan VM %s: %s", record.name, result.stderr)
                    continue
                deleted.append(record.name)
            await asyncio.to_thread(self._state.remove, self._tool, record.name)
        return deleted

    async def create(
        self,
        task_id: str,
        isolation: Isolation,
        *,
        run_args: Sequence[str] = (),
        ident: str | None = None,
        lazy_pull: bool = False,
        cli_env: Mapping[str, str] | None = None,
    ) -> VmInstance:
        """Boot a VM and connect to it; ``InstanceError`` (nothing left behind) if it cannot.

        ``run_args`` are a resource modifier's ``append.run`` arguments (Vetu only); ``ident``
        replaces the task id in the VM name (``standby``); ``cli_env`` (TRACEPARENT…) goes to
        every ``<tool>`` invocation of this VM, not into the guest.
        """
        if self._tool == "tart" and not isinstance(isolation, TartIsolation):
            raise InstanceError(f"a Tart worker cannot run a {isolation.kind} isolation")
        if self._tool == "vetu" and not isinstance(isolation, VetuIsolation):
            raise InstanceError(f"a Vetu worker cannot run a {isolation.kind} isolation")
        assert isinstance(isolation, TartIsolation | VetuIsolation)
        instance = VmInstance(
            self._cli,
            self._state,
            vm_name(ident or task_id),
            isolation,
            dict(cli_env or {}),
            self._working_directory,
            self._grace_seconds,
        )
        try:
            await self._boot(instance, isolation, run_args, lazy_pull)
        except BaseException:
            await finish_despite_cancellation(instance.close_quietly())
            raise
        return instance

    async def _boot(
        self,
        instance: VmInstance,
        isolation: TartIsolation | VetuIsolation,
        run_args: Sequence[str],
        lazy_pull: bool,
    ) -> None:
        cli, name, env = self._cli, instance.name, instance.cli_env
        if not lazy_pull:
            pulled = await cli.run(["pull", isolation.image], env, check=False)
            if pulled.returncode != 0:
                _log.warning("%s pull %s failed, continuing", self._tool, isolation.image)
        if isinstance(isolation, TartIsolation):
            instance.shares = await asyncio.to_thread(
                tart.prepare_shared_directories, isolation.volumes
            )
        await asyncio.to_thread(self._state.add, VmRecord(self._tool, name, os.getpid()))
        instance.recorded = True
        clone_env = {**env, **tart.CLONE_ENV} if self._tool == "tart" else env
        await cli.run(["clone", isolation.image, name], clone_env)
        instance.cloned = True
        if isinstance(isolation, TartIsolation):
            commands = tart.set_commands(name, isolation)
            softnet, allow = tart_softnet(self._policy, isolation)
            args = tart.run_arguments(name, isolation, softnet, allow, instance.shares)
        else:
            commands = vetu.set_commands(name, isolation)
            args = vetu.run_arguments(name, isolation, self._mtu, run_args)
        for command in commands:
            await cli.run(command, env)
        instance.run = await cli.start(args, env)
        instance.ip = await self._wait_for_ip(instance, instance.run)
        if isinstance(isolation, TartIsolation):
            got = await cli.run(["get", "--format", "json", name], env, check=False)
            instance.guest_os = guest_os(got.stdout) if got.returncode == 0 else "darwin"
        else:
            instance.guest_os = "linux"
        instance.connection = await connect_when_ready(
            instance.ip,
            isolation.port or 22,
            isolation.user or DEFAULT_USER,
            isolation.password or DEFAULT_PASSWORD,
            self._ssh_timeout,
            name,
            abort=instance.run.exited,
        )
        for share in instance.shares:
            if share.target:
                await instance.run_hook(tart.link_command(share, self._shared_files_root))
        await instance.run_hook(f"mkdir -p {shlex.quote(self._working_directory)}")

    async def _wait_for_ip(self, instance: VmInstance, run: LongRunningCommand) -> str:
        """``<tool> ip --wait 30`` until it answers, the VM process exits, or the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ip_timeout
        while True:
            if run.exited.done():
                raise run.failure()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise InstanceError(
                    f"timed out while trying to retrieve the VM {instance.name} IP "
                    f"(waited {self._ip_timeout:g} s)"
                )
            ip_call = asyncio.ensure_future(
                self._cli.run(
                    ["ip", "--wait", IP_WAIT_ARGUMENT, instance.name], instance.cli_env, check=False
                )
            )
            waiters: set[asyncio.Future[Any]] = {ip_call, run.exited}
            try:
                await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not ip_call.done():
                    ip_call.cancel()
                    await asyncio.wait({ip_call})
            if not ip_call.cancelled():
                answer = ip_call.result()
                address = answer.stdout.strip()
                if answer.returncode == 0 and address:
                    return address
            pause = min(1.0, max(0.0, deadline - loop.time()))
            await asyncio.wait({run.exited}, timeout=pause)


class _LogSink:
    """Logs a warm-up script's output at debug level, line by line (lines capped)."""

    def __init__(self, vm: str) -> None:
        self._vm = vm
        self._pending = b""

    async def write(self, data: bytes) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > 64 * 1024:
            lines.append(self._pending)
            self._pending = b""
        for line in lines:
            _log.debug("warm-up %s: %s", self._vm, line.decode("utf-8", "replace"))


class VmInstance:
    """A running VM of a task (or the standby); scripts run over one SSH connection."""

    def __init__(
        self,
        cli: VmCli,
        state: VmStateFile,
        name: str,
        isolation: TartIsolation | VetuIsolation,
        cli_env: dict[str, str],
        working_directory: str,
        grace_seconds: float,
    ) -> None:
        self._cli = cli
        self._state = state
        self._name = name
        self._isolation = isolation
        self.cli_env = cli_env
        self._working_directory = working_directory
        self._grace_seconds = grace_seconds
        self._probed: dict[str, str] | None = None
        # Filled in by the factory while booting; close() undoes whatever got done.
        self.shares: list[tart.SharedDirectory] = []
        self.recorded = False
        self.cloned = False
        self.run: LongRunningCommand | None = None
        self.ip = ""
        self.guest_os = ""
        self.connection: asyncssh.SSHClientConnection | None = None
        self._background: list[BackgroundScript] = []
        self._closed = False

    @property
    def name(self) -> str:
        """The VM's name (``CIRRUS_VM_ID``)."""
        return self._name

    @property
    def isolation(self) -> TartIsolation | VetuIsolation:
        """The isolation it was created for (unchanged)."""
        return self._isolation

    @property
    def attributes(self) -> dict[str, str | float]:
        """Metric/span attributes: image, instance_type, instance_cpus."""
        return instance_attributes(self._isolation)

    @property
    def working_directory(self) -> str:
        """The task's working directory inside the guest."""
        return self._working_directory

    def base_environment(self) -> Mapping[str, str]:
        """``CIRRUS_VM_ID``; the rest of the guest's environment comes from its login shell."""
        return {"CIRRUS_VM_ID": self._name}

    async def probe_environment(self) -> Mapping[str, str]:
        """What ``env`` prints in the guest's login shell, as scripts start; asked once."""
        if self._probed is None:
            command = login_shell_command(PRINT_ENVIRONMENT)
            status, output, line = await capture_command(
                self._open_connection(), command, timeout_seconds=HOOK_SECONDS
            )
            if status != 0:
                raise InstanceError(
                    f"cannot read the environment of VM {self._name}: {line or status}"
                )
            self._probed = {**parse_env_output(output), **self.base_environment()}
        return dict(self._probed)

    async def create_env_file(self) -> str:
        """An empty, private ``$CIRRUS_ENV`` file in the guest's temporary directory."""
        command = 'umask 077; mktemp "${TMPDIR:-/tmp}/cirrus-env-XXXXXXXX"'
        status, output, line = await capture_command(
            self._open_connection(), command, timeout_seconds=HOOK_SECONDS
        )
        path = output.strip()
        if status != 0 or not path:
            raise InstanceError(f"cannot create a CIRRUS_ENV file in VM {self._name}: {line}")
        return path

    async def take_env_file(self, path: str) -> str:
        """The text written to a ``create_env_file`` file in the guest; the file is removed."""
        quoted = shlex.quote(path)
        command = f"cat {quoted} 2>/dev/null; rm -f {quoted}"
        _, output, _ = await capture_command(
            self._open_connection(), command, timeout_seconds=HOOK_SECONDS
        )
        return output

    def _open_connection(self) -> asyncssh.SSHClientConnection:
        if self._closed or self.connection is None:
            raise InstanceError(f"the VM instance {self._name} is closed")
        return self.connection

    async def run_script(self, script: str, env: Mapping[str, str], output: OutputSink) -> int:
        """Run ``script`` to its end; return its exit status (128 + N for death by signal N)."""
        remote = await RemoteScript.start(
            self._open_connection(), script, env, self._working_directory
        )
        return await remote.supervise(output, self._grace_seconds)

    async def start_background(
        self, script: str, env: Mapping[str, str], output: OutputSink
    ) -> BackgroundScript:
        """Start ``script`` and return at once; its output streams into ``output``."""
        remote = await RemoteScript.start(
            self._open_connection(), script, env, self._working_directory
        )
        stop_requested = asyncio.Event()
        supervisor = asyncio.create_task(
            remote.supervise(output, self._grace_seconds, stop_requested),
            name=f"background script in {self._name}",
        )
        handle = BackgroundScript(supervisor, stop_requested)
        self._background.append(handle)
        return handle

    async def write_file(self, path: str, contents: bytes) -> None:
        """Write ``contents`` to ``path`` (relative to the working directory) in the guest."""
        target = path if path.startswith("/") else f"{self._working_directory}/{path}"
        command = f"/bin/sh -c {shlex.quote(_WRITE_FILE)} sh {shlex.quote(target)}"
        status, line = await run_command(self._open_connection(), command, stdin=contents)
        if status != 0:
            raise InstanceError(f"cannot write {target}: {line or f'status {status}'}")

    async def copy_in(self, local_dir: str, remote_dir: str) -> None:
        """Copy the files of host directory ``local_dir`` into ``remote_dir`` over SFTP."""
        target = (
            remote_dir if remote_dir.startswith("/") else f"{self._working_directory}/{remote_dir}"
        )
        await copy_tree(self._open_connection(), local_dir, target)

    def _guest_path(self, path: str) -> str:
        return path if path.startswith("/") else f"{self._working_directory}/{path}"

    def host_path(self, remote_path: str) -> str | None:
        """None: the guest's files are reached over SFTP only."""
        del remote_path
        return None

    async def list_files(self, root: str) -> tuple[str, ...]:
        """The regular files under ``root`` in the guest, listed over SFTP."""
        return await sftp_copy.list_files(self._open_connection(), self._guest_path(root))

    async def copy_out(self, remote_path: str, local_path: str) -> bool:
        """Copy the guest's ``remote_path`` to the host's ``local_path`` over SFTP."""
        return await sftp_copy.copy_out(
            self._open_connection(), self._guest_path(remote_path), local_path
        )

    async def run_hook(self, command: str) -> None:
        """Run a short setup command in the guest; ``InstanceError`` if it fails."""
        status, line = await run_command(
            self._open_connection(), command, timeout_seconds=HOOK_SECONDS
        )
        if status != 0:
            raise InstanceError(f"{command!r} failed in VM {self._name}: {line or status}")

    async def warm_up(self, script: str, timeout_seconds: float) -> None:
        """Run the standby's warm-up script (Tart and Vetu); a timeout is no failure.

        Output goes to the debug log. A non-zero exit fails with ``warm-up script failed: …``.
        """
        if not script.strip():
            return
        try:
            if timeout_seconds > 0:
                async with asyncio.timeout(timeout_seconds):
                    status = await self.run_script(script, {}, _LogSink(self._name))
            else:
                status = await self.run_script(script, {}, _LogSink(self._name))
        except TimeoutError:
            _log.info("warm-up script timed out, ignoring...")
            return
        except InstanceError as exc:
            raise InstanceError(f"warm-up script failed: {exc}") from exc
        if status != 0:
            raise InstanceError(f"warm-up script failed: exit status {status}")

    async def close(self) -> None:
        """Stop the VM and delete it, with everything created for it; idempotent."""
        if self._closed:
            return
        self._closed = True
        await finish_despite_cancellation(self._destroy())

    async def close_quietly(self) -> None:
        """``close`` for a failed creation: errors are logged, the creation's error wins."""
        try:
            await self.close()
        except InstanceError as exc:
            _log.warning("cleaning up the VM %s failed: %s", self._name, exc)

    async def _destroy(self) -> None:
        for handle in self._background:
            # The task is over: a failing log sink of a background script changes nothing now.
            with contextlib.suppress(Exception):
                await handle.stop()
        self._background.clear()
        if self.connection is not None:
            for share in self.shares:
                if share.target:
                    with contextlib.suppress(InstanceError):
                        await run_command(
                            self.connection,
                            tart.unlink_command(share),
                            timeout_seconds=HOOK_SECONDS,
                        )
            self.connection.close()
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                async with asyncio.timeout(HOOK_SECONDS):
                    await self.connection.wait_closed()
        failure: InstanceError | None = None
        if self.cloned or self.run is not None:
            with contextlib.suppress(InstanceError, TimeoutError):
                async with asyncio.timeout(STOP_SECONDS + STOP_SLACK_SECONDS):
                    await self._cli.run(
                        ["stop", "--timeout", str(STOP_SECONDS), self._name],
                        self.cli_env,
                        check=False,
                    )
        if self.run is not None:
            await self.run.terminate(RUN_EXIT_WAIT_SECONDS)
        if self.recorded:
            try:
                deleted = await self._cli.run(["delete", self._name], self.cli_env, check=False)
            except InstanceError as exc:
                failure = exc
            else:
                if deleted.returncode != 0 and self.cloned:
                    failure = InstanceError(
                        failure_message(self._cli.tool, deleted.stdout, deleted.stderr)
                    )
            if failure is None:
                await asyncio.to_thread(self._state.remove, self._cli.tool, self._name)
        await asyncio.to_thread(tart.remove_created_sources, self.shares)
        if failure is not None:
            raise failure
