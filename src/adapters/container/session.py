"""One script run inside a container through ``<engine> exec``, and the supervision of its lifetime.

The script and a small wrapper are files in the instance's scripts directory, mounted into the
container, so neither the script nor its environment (secrets) appears on a command line. The
wrapper records its pid (the runtime makes every exec'd process a session and process group
leader), runs the script with the task's environment, records the script's exit status, and
then kills whatever the script left in its process group, like the host backend does.

The wrapper sends the script's stderr into its stdout inside the container (the engine would
reorder the two); the engine client (``docker exec`` / ``podman exec``) is a local process whose
output, its own errors included, is streamed in bounded chunks. Cancelling kills the script's
process group *inside* the container (SIGINT, SIGKILL after the grace period) with a second
``exec``, then the local client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Mapping
from pathlib import Path

from adapters.container.engine import ContainerEngine
from adapters.host.process import (
    DRAIN_BUDGET_SECONDS,
    READ_POLL_SECONDS,
    ScriptProcess,
    finish_despite_cancellation,
)
from domain.errors import InstanceError
from domain.ports import OutputSink
from domain.script_launch import ScriptLaunch

SHELL = "/bin/sh"
# How long a cancellation waits for the wrapper to record its pid before giving up on it.
PID_WAIT_SECONDS = 5.0
# Extra time granted to the in-container kill ladder and to the client after it, beyond the grace.
ENGINE_SLACK_SECONDS = 15.0
LADDER_STEP_SECONDS = 0.1

# Kills process group $1 inside the container: SIGINT, then SIGKILL after $2 steps of 0.1 s.
# `kill -SIG -N` (not `kill -s`, not `--`) is the spelling dash, bash and busybox all accept;
# the plain pid is a fallback for a runtime that would not make the wrapper a group leader.
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


def wrapper_script(
    launch: ScriptLaunch,
    script_path: str,
    pid_path: str,
    status_path: str,
    env: Mapping[str, str],
) -> str:
    """The wrapper that starts ``launch`` (its file at ``script_path``) with ``env`` added.

    ``env`` goes through ``env NAME=VALUE ...`` rather than ``export`` so that names that are not
    shell identifiers still arrive; names ``env`` would take for options are dropped. The
    launch's working directory is made first when missing.
    """
    assignments = " ".join(
        shlex.quote(f"{name}={value}")
        for name, value in env.items()
        if name and "=" not in name and not name.startswith("-")
    )
    argv = [*launch.argv, script_path] if launch.needs_file else list(launch.argv)
    directory = shlex.quote(launch.working_directory)
    return (
        # The engine keeps a container process's stdout and stderr apart and does not keep their
        # relative order: one stream inside keeps the script's output in the order written.
        "exec 2>&1\n"
        f"echo $$ >{shlex.quote(pid_path)}\n"
        f"mkdir -p {directory} && cd {directory} && "
        f"env {assignments} {shlex.join(argv)}\n"
        "status=$?\n"
        f"echo $status >{shlex.quote(status_path)}\n"
        # Whatever the script left running in its group dies with the wrapper itself; the
        # recorded status, not the exec's, is the script's.
        "kill -KILL -$$ 2>/dev/null\n"
        "exit $status\n"
    )


class ExecSession:
    """A started ``<engine> exec`` of one wrapper, with the host paths of its pid/status files."""

    def __init__(
        self,
        engine: ContainerEngine,
        container: str,
        process: ScriptProcess,
        pid_file: Path,
        status_file: Path,
    ) -> None:
        self._engine = engine
        self._container = container
        self._process = process
        self._pid_file = pid_file
        self._status_file = status_file

    @classmethod
    async def start(
        cls,
        engine: ContainerEngine,
        container: str,
        workdir: str,
        wrapper_path: str,
        host_cwd: str,
        pid_file: Path,
        status_file: Path,
    ) -> ExecSession:
        """Start the engine client that execs ``wrapper_path`` inside ``container``."""
        argv = engine.command("exec", "--workdir", workdir, container, SHELL, wrapper_path)
        process = await ScriptProcess.start(argv, dict(os.environ), host_cwd)
        return cls(engine, container, process, pid_file, status_file)

    def _status(self, client_status: int) -> int:
        """The script's status as the wrapper recorded it, else the client's exit status."""
        try:
            return int(self._status_file.read_text().strip())
        except (OSError, ValueError):
            return client_status

    def _script_pid(self) -> int | None:
        try:
            return int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    async def supervise(
        self,
        output: OutputSink,
        grace_seconds: float,
        stop_requested: asyncio.Event | None = None,
    ) -> int:
        """Stream the output until the script ends; return its exit status.

        On cancellation, a failing sink or ``stop_requested``, the script's group inside the
        container gets SIGINT, then SIGKILL after ``grace_seconds``; the cleanup completes even
        if cancelled again, and the cancellation (or the sink's error) is re-raised afterwards.
        """
        process = self._process
        pump = asyncio.create_task(process.pump(output))
        exited = asyncio.ensure_future(process.wait())
        stop = asyncio.ensure_future(stop_requested.wait()) if stop_requested else None
        waiters = {exited, pump} if stop is None else {exited, pump, stop}
        try:
            while not exited.done():
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if pump.done():
                    pump.result()  # a failing sink ends the script: see the handler below
                    waiters.discard(pump)
                if stop is not None and stop.done():
                    await finish_despite_cancellation(self._terminate(pump, exited, grace_seconds))
                    return self._status(await exited)
            process.start_draining()
            await pump
            return self._status(await exited)
        except BaseException:
            await finish_despite_cancellation(self._terminate(pump, exited, grace_seconds))
            raise
        finally:
            if stop is not None:
                stop.cancel()
            process.close_pipe()

    async def _terminate(
        self, pump: asyncio.Task[None], exited: asyncio.Future[int], grace_seconds: float
    ) -> None:
        """Kill the script inside the container, then the local client, then drain."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PID_WAIT_SECONDS
        pid = self._script_pid()
        while pid is None and not exited.done() and loop.time() < deadline:
            await asyncio.wait({exited}, timeout=0.05)
            pid = self._script_pid()
        if pid is not None:
            await self._kill_inside(pid, grace_seconds)
        # The wrapper is gone, so the client should end by itself; it gets a short while.
        if not exited.done():
            await asyncio.wait({exited}, timeout=min(grace_seconds, 2.0) if pid else 0)
        self._process.signal_group(signal.SIGKILL)
        await asyncio.wait({exited})
        self._process.start_draining()
        # The sink may be what failed or what blocks: give it a bounded chance, then give up.
        await asyncio.wait({pump}, timeout=DRAIN_BUDGET_SECONDS + READ_POLL_SECONDS)
        if not pump.done():
            pump.cancel()
        await asyncio.wait({pump})
        if not pump.cancelled():
            pump.exception()  # retrieved on purpose: the caller re-raises the first error

    async def _kill_inside(self, pid: int, grace_seconds: float) -> None:
        """Run the kill ladder for ``pid``'s group in the container; engine trouble is ignored."""
        steps = max(0, round(grace_seconds / LADDER_STEP_SECONDS))
        args = ["exec", self._container, SHELL, "-c", _KILL_LADDER, "sh", str(pid), str(steps)]
        # The container may already be gone (then the script is too): nothing to report.
        with contextlib.suppress(InstanceError, TimeoutError):
            async with asyncio.timeout(grace_seconds + ENGINE_SLACK_SECONDS):
                await self._engine.run(args, check=False)
