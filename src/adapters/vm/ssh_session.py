"""Scripts run inside a VM over SSH (asyncssh): connection, one channel per script, cancellation.

Each script runs in the guest user's *login* shell (profile files sourced, like the original's
agent launch), which immediately execs ``/bin/sh`` on a wrapper read from the channel's stdin:
neither the script nor its environment (secrets) appears on a command line. The wrapper

* reports its pid on the channel's stderr (sshd makes every exec'd command a session and
  process-group leader, and the exec chain keeps that pid),
* exports the task environment, enters the working directory (``CIRRUS_WORKING_DIR``, made when
  missing) and runs the script with ``/bin/sh -e`` (or ``CIRRUS_SHELL``'s command, or no shell
  for ``direct``) and stdin at EOF, its stderr merged into stdout (one ordered stream),
* reports the script's exit status on stderr, then kills what the script left in its group.

Cancelling kills the script's process group from a second channel (SIGINT, then SIGKILL after
the grace period), then closes the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shlex
import signal
from collections.abc import Mapping
from typing import Any

import asyncssh

from adapters.host.process import finish_despite_cancellation
from domain.errors import InstanceError
from domain.ports import OutputSink
from domain.script_launch import ScriptLaunch, script_launch

CHUNK_SIZE = 64 * 1024
READ_POLL_SECONDS = 0.2
# Once the script has ended only buffered bytes remain; a process that left the script's group
# (setsid) may hold the channel open, and is abandoned after this long.
DRAIN_BUDGET_SECONDS = 2.0
# Extra time granted to the remote kill ladder beyond the grace period.
LADDER_SLACK_SECONDS = 10.0
LADDER_STEP_SECONDS = 0.1
# Other stderr output of the login shell (profile messages…) kept for the task's log.
STDERR_LIMIT = 64 * 1024
CONNECT_ATTEMPT_SECONDS = 10.0
RETRY_SECONDS = 1.0
_PROTOCOL_LINE = re.compile(rb"^cirrus-(pid|status) (\d+)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Read the wrapper from stdin into a private temporary directory and exec it, stdin at EOF.
_BOOTSTRAP = (
    'umask 077; d=$(mktemp -d "${TMPDIR:-/tmp}/cirrus-ci-XXXXXXXX") || exit 125; '
    'cat >"$d/run.sh" || exit 125; exec /bin/sh "$d/run.sh" "$d" </dev/null'
)
# Kills process group $1: SIGINT, then SIGKILL after $2 steps of 0.1 s (dash/bash/zsh syntax).
_KILL_LADDER = """\
pid=$1 steps=$2 i=0
kill -INT -$pid 2>/dev/null || kill -INT $pid 2>/dev/null
while kill -0 -$pid 2>/dev/null || kill -0 $pid 2>/dev/null; do
    if [ "$i" -ge "$steps" ]; then
        kill -KILL -$pid 2>/dev/null
        kill -KILL $pid 2>/dev/null
        exit 0
    fi
    sleep 0.1 2>/dev/null || sleep 1
    i=$((i + 1))
done
"""


def login_shell_command(inner: str) -> str:
    """The exec-request command that runs ``inner`` (sh syntax) after a login shell's profile."""
    return f'exec "${{SHELL:-/bin/sh}}" -l -c {shlex.quote(inner)}'


def wrapper_script(launch: ScriptLaunch, env: Mapping[str, str]) -> str:
    """The wrapper (run as ``/bin/sh run.sh <its dir>``) that starts ``launch`` with ``env``."""
    argv = shlex.join(launch.argv)
    script = ""
    if launch.needs_file:
        argv += ' "$d/script.sh"'
        delimiter = f"CIRRUS_SCRIPT_END_{secrets.token_hex(8)}"
        while delimiter in launch.text:
            delimiter = f"CIRRUS_SCRIPT_END_{secrets.token_hex(8)}"
        script = f"cat >\"$d/script.sh\" <<'{delimiter}'\n{launch.text}{delimiter}\n"
    exports = "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in env.items() if _NAME.match(name)
    )
    wd = shlex.quote(launch.working_directory)
    return (
        'd="$1"\n'
        "exec 3>&2 2>&1\n"
        "echo cirrus-pid $$ >&3\n"
        f"{script}"
        f"{exports}"
        f"mkdir -p {wd} && cd {wd} || {{ echo cirrus-status 1 >&3; exit 1; }}\n"
        f"{argv} 3>&-\n"
        "status=$?\n"
        'rm -rf "$d"\n'
        "echo cirrus-status $status >&3\n"
        # Whatever the script left running in its group dies with the wrapper itself: the
        # status reported above, not the channel's exit signal, is the script's.
        "kill -KILL -$$ 2>/dev/null\n"
        "exit $status\n"
    )


async def connect_when_ready(
    host: str,
    port: int,
    username: str,
    password: str,
    timeout_seconds: float,
    vm_name: str,
    abort: asyncio.Future[int] | None = None,
) -> asyncssh.SSHClientConnection:
    """Connect with password auth (any host key accepted), retrying every second until the deadline.

    A refused login fails at once; a timeout fails with the last connection error. ``abort``
    (the VM process's exit) ends the wait early with an ``InstanceError`` too.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    last_error = "no attempt made"
    while True:
        if abort is not None and abort.done():
            raise InstanceError(f"the VM {vm_name} stopped while waiting for SSH")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise InstanceError(
                f"timed out after {timeout_seconds:g} s while waiting for SSH on VM {vm_name} "
                f"at {host}:{port}: {last_error}"
            )
        try:
            async with asyncio.timeout(min(CONNECT_ATTEMPT_SECONDS, remaining)):
                return await asyncssh.connect(
                    host,
                    port,
                    username=username,
                    password=password,
                    known_hosts=None,
                    client_keys=None,
                    agent_path=None,
                    config=None,
                    preferred_auth=("password", "keyboard-interactive"),
                    keepalive_interval=15,
                    keepalive_count_max=4,
                )
        except asyncssh.PermissionDenied as exc:
            raise InstanceError(
                f"SSH login as {username!r} to VM {vm_name} was refused: {exc.reason}"
            ) from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            last_error = _describe(exc)
        waiters: set[asyncio.Future[int]] = {abort} if abort is not None else set()
        pause = min(RETRY_SECONDS, max(0.0, deadline - loop.time()))
        if waiters:
            await asyncio.wait(waiters, timeout=pause)
        else:
            await asyncio.sleep(pause)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "connection attempt timed out"
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    return str(exc) or type(exc).__name__


async def run_command(
    connection: asyncssh.SSHClientConnection,
    command: str,
    stdin: bytes = b"",
    timeout_seconds: float = 60.0,
) -> tuple[int, str]:
    """Run a short helper command; return its exit status and first error line (bounded)."""
    status, _, line = await capture_command(connection, command, stdin, timeout_seconds)
    return status, line


async def capture_command(
    connection: asyncssh.SSHClientConnection,
    command: str,
    stdin: bytes = b"",
    timeout_seconds: float = 60.0,
) -> tuple[int, str, str]:
    """Run a short helper command; return its exit status, output and first error line."""
    try:
        async with asyncio.timeout(timeout_seconds):
            result = await connection.run(command, input=stdin, encoding=None, check=False)
    except TimeoutError as exc:
        raise InstanceError(f"a command over SSH timed out after {timeout_seconds:g} s") from exc
    except (OSError, asyncssh.Error) as exc:
        raise InstanceError(f"a command over SSH failed: {_describe(exc)}") from exc
    status = result.exit_status if result.exit_status is not None else 255
    stdout = result.stdout if isinstance(result.stdout, bytes) else b""
    stderr = result.stderr if isinstance(result.stderr, bytes) else b""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    return status, stdout.decode("utf-8", "replace"), next((line for line in lines if line), "")


class RemoteScript:
    """One started wrapper: its channel, and the pid/status it reports on stderr."""

    def __init__(
        self,
        connection: asyncssh.SSHClientConnection,
        process: asyncssh.SSHClientProcess[bytes],
    ) -> None:
        self._connection = connection
        self._process = process
        self._pid: int | None = None
        self._status: int | None = None
        self._pid_known = asyncio.Event()
        self._other_stderr = bytearray()
        self._stderr_reader = asyncio.create_task(self._read_stderr())

    @classmethod
    async def start(
        cls,
        connection: asyncssh.SSHClientConnection,
        script: str,
        env: Mapping[str, str],
        working_directory: str,
    ) -> RemoteScript:
        """Open the channel and send the wrapper; ``InstanceError`` if the channel cannot open.

        ``env``'s ``CIRRUS_SHELL`` and ``CIRRUS_WORKING_DIR`` pick the shell and the directory
        (``working_directory`` when unset), as ``domain.script_launch`` says.
        """
        wrapper = wrapper_script(script_launch(script, env, working_directory), env)
        try:
            process = await connection.create_process(
                login_shell_command(_BOOTSTRAP), encoding=None
            )
        except (OSError, asyncssh.Error) as exc:
            raise InstanceError(f"cannot start a script over SSH: {_describe(exc)}") from exc
        try:
            process.stdin.write(wrapper.encode("utf-8"))
            process.stdin.write_eof()
        except (OSError, asyncssh.Error) as exc:
            process.close()
            raise InstanceError(f"cannot send a script over SSH: {_describe(exc)}") from exc
        return cls(connection, process)

    async def _read_stderr(self) -> None:
        pending = b""
        with contextlib.suppress(OSError, asyncssh.Error):
            while chunk := await self._process.stderr.read(CHUNK_SIZE):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._take_stderr_line(line + b"\n")
                if len(pending) > CHUNK_SIZE:
                    self._take_stderr_line(pending)
                    pending = b""
        if pending:
            self._take_stderr_line(pending)
        self._pid_known.set()

    def _take_stderr_line(self, line: bytes) -> None:
        match = _PROTOCOL_LINE.match(line.strip())
        if match is None:
            room = STDERR_LIMIT - len(self._other_stderr)
            if room > 0:
                self._other_stderr += line[:room]
        elif match.group(1) == b"pid":
            self._pid = int(match.group(2))
            self._pid_known.set()
        else:
            self._status = int(match.group(2))

    def _final_status(self) -> int:
        if self._status is not None:
            return self._status
        process = self._process
        if process.exit_status is not None and process.exit_status >= 0:
            return process.exit_status
        if process.exit_signal is not None:
            number = getattr(signal, f"SIG{process.exit_signal[0]}", None)
            return 128 + int(number) if number is not None else 255
        raise InstanceError("lost the SSH connection to the VM while a script was running")

    def _ended(self) -> bool:
        return self._status is not None or self._process.exit_status is not None

    async def _pump(self, output: OutputSink) -> None:
        """Copy stdout into ``output`` chunk by chunk until EOF or an abandoned drain."""
        loop = asyncio.get_running_loop()
        draining_since: float | None = None
        while True:
            try:
                async with asyncio.timeout(READ_POLL_SECONDS):
                    chunk = await self._process.stdout.read(CHUNK_SIZE)
            except TimeoutError:
                chunk = None
            except (OSError, asyncssh.Error):
                return
            if chunk == b"":
                return
            if chunk:
                await output.write(chunk)
            if self._ended():
                draining_since = draining_since or loop.time()
                if loop.time() - draining_since > DRAIN_BUDGET_SECONDS:
                    return

    async def supervise(
        self,
        output: OutputSink,
        grace_seconds: float,
        stop_requested: asyncio.Event | None = None,
    ) -> int:
        """Stream the output until the script ends; return its exit status.

        On cancellation, a failing sink or ``stop_requested``, the script's group gets SIGINT,
        then SIGKILL after ``grace_seconds``, and the channel is closed; the cleanup completes
        even if cancelled again, and the cancellation (or the sink's error) is re-raised.
        """
        pump = asyncio.create_task(self._pump(output))
        stop = asyncio.ensure_future(stop_requested.wait()) if stop_requested else None
        waiters: set[asyncio.Future[Any]] = {pump}
        if stop is not None:
            waiters.add(stop)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                pump.result()
            else:
                await finish_despite_cancellation(self._terminate(pump, grace_seconds))
            await self._finish_channel()
            await self._flush_other_stderr(output)
            return self._final_status()
        except BaseException:
            await finish_despite_cancellation(self._terminate(pump, grace_seconds))
            raise
        finally:
            if stop is not None:
                stop.cancel()
            self._process.close()
            self._stderr_reader.cancel()

    async def _finish_channel(self) -> None:
        """Give the channel a bounded chance to deliver its exit status and close."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_BUDGET_SECONDS):
                await asyncio.wait({self._stderr_reader})
                await self._process.wait_closed()

    async def _flush_other_stderr(self, output: OutputSink) -> None:
        if self._other_stderr:
            data = bytes(self._other_stderr)
            self._other_stderr.clear()
            await output.write(data)

    async def _terminate(self, pump: asyncio.Task[None], grace_seconds: float) -> None:
        """Kill the script's group in the guest, close the channel, then let the pump finish."""
        if not self._ended():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds + LADDER_SLACK_SECONDS):
                    await self._pid_known.wait()
            if self._pid is not None and not self._ended():
                steps = max(0, round(grace_seconds / LADDER_STEP_SECONDS))
                command = f"/bin/sh -c {shlex.quote(_KILL_LADDER)} sh {self._pid} {steps}"
                # A dead connection means a dead VM (or one being stopped): nothing to add.
                with contextlib.suppress(InstanceError):
                    await run_command(
                        self._connection, command, timeout_seconds=grace_seconds + 10.0
                    )
        self._process.close()
        await asyncio.wait({pump}, timeout=DRAIN_BUDGET_SECONDS + READ_POLL_SECONDS)
        if not pump.done():
            pump.cancel()
        await asyncio.wait({pump})
        if not pump.cancelled():
            pump.exception()  # retrieved on purpose: the caller re-raises the first error
