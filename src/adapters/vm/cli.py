"""The ``tart`` and ``vetu`` command lines, run as asyncio subprocesses.

Every invocation gets the worker's environment plus the task's (``TRACEPARENT``…). Failures
become ``InstanceError`` with the original's texts: ``<tool> command not found: …`` when the tool
is not on ``PATH``, and ``<tool> command returned non-zero exit code: "<line>"`` where the line is
the first non-empty one of stderr, else of stdout. Output kept in memory is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from domain.errors import InstanceError

Tool = Literal["tart", "vetu"]
# What one short command may leave in memory per stream; the rest is read and dropped.
CAPTURE_LIMIT = 1024 * 1024
READ_SIZE = 64 * 1024
# How long the long-running ``run`` process gets between SIGTERM and SIGKILL.
KILL_DELAY_SECONDS = 1.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CliResult:
    """What one finished command returned (output decoded, each stream capped)."""

    returncode: int
    stdout: str
    stderr: str


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, stripped (empty if there is none)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def failure_message(tool: str, stdout: str, stderr: str) -> str:
    """The original's one-line error of a command that exited non-zero."""
    line = first_line(stderr) or first_line(stdout)
    escaped = line.replace("\\", "\\\\").replace('"', '\\"')
    return f'{tool} command returned non-zero exit code: "{escaped}"'


async def _read_capped(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    """Read ``stream`` to EOF, keeping at most ``limit`` bytes."""
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(READ_SIZE):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


class VmCli:
    """One tool's command line (``tart`` or ``vetu``); every call is a fresh subprocess."""

    def __init__(self, tool: Tool, base_env: Mapping[str, str] | None = None) -> None:
        self._tool: Tool = tool
        self._base_env = dict(os.environ if base_env is None else base_env)

    @property
    def tool(self) -> Tool:
        """``tart`` or ``vetu``."""
        return self._tool

    def environment(self, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of an invocation: the worker's, then ``extra_env``."""
        return {**self._base_env, **(extra_env or {})}

    def _executable(self) -> str:
        found = shutil.which(self._tool, path=self._base_env.get("PATH", os.defpath))
        if found is None:
            name = self._tool.capitalize()
            raise InstanceError(
                f"{self._tool} command not found: {self._tool} command not found in PATH, "
                f"make sure {name} is installed"
            )
        return found

    async def run(
        self,
        args: Sequence[str],
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> CliResult:
        """Run ``<tool> args…`` to its end; ``InstanceError`` on a non-zero exit when ``check``.

        Cancelling kills the command and waits for it before re-raising.
        """
        argv = [self._executable(), *args]
        _log.debug("running %s %s", self._tool, " ".join(args))
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(extra_env),
            )
        except OSError as exc:
            raise InstanceError(f"cannot run {self._tool}: {exc}") from exc
        try:
            out, err = await asyncio.gather(
                _read_capped(process.stdout, CAPTURE_LIMIT),
                _read_capped(process.stderr, CAPTURE_LIMIT),
            )
            returncode = await process.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
            raise
        result = CliResult(
            returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )
        for line in result.stderr.splitlines():
            if line.strip():
                _log.warning("%s %s: %s", self._tool, args[0] if args else "", line)
        if check and returncode != 0:
            raise InstanceError(failure_message(self._tool, result.stdout, result.stderr))
        return result

    async def start(
        self, args: Sequence[str], extra_env: Mapping[str, str] | None = None
    ) -> LongRunningCommand:
        """Start ``<tool> args…`` (e.g. ``run``) in its own process group and return at once."""
        argv = [self._executable(), *args]
        _log.debug("starting %s %s", self._tool, " ".join(args))
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(extra_env),
                start_new_session=True,
            )
        except OSError as exc:
            raise InstanceError(f"cannot run {self._tool}: {exc}") from exc
        return LongRunningCommand(self._tool, process)


class LongRunningCommand:
    """A started ``<tool> run``: its output is logged line by line, its exit is watched."""

    def __init__(self, tool: str, process: asyncio.subprocess.Process) -> None:
        self._tool = tool
        self._process = process
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._readers = [
            asyncio.create_task(self._log_stream(process.stdout, self._stdout, logging.INFO)),
            asyncio.create_task(self._log_stream(process.stderr, self._stderr, logging.WARNING)),
        ]
        self._exited = asyncio.ensure_future(self._wait())

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self._process.pid

    @property
    def exited(self) -> asyncio.Future[int]:
        """Completes with the return code once the process has exited and its output is read."""
        return self._exited

    def failure(self) -> InstanceError:
        """The error that an exit of this process means (it should run until it is stopped)."""
        code = self._exited.result() if self._exited.done() else None
        stdout = self._stdout.decode("utf-8", "replace")
        stderr = self._stderr.decode("utf-8", "replace")
        if code:
            return InstanceError(failure_message(self._tool, stdout, stderr))
        detail = first_line(stderr) or first_line(stdout)
        suffix = f": {detail}" if detail else ""
        return InstanceError(f"{self._tool} run exited unexpectedly{suffix}")

    async def _log_stream(
        self, stream: asyncio.StreamReader | None, kept: bytearray, level: int
    ) -> None:
        if stream is None:
            return
        pending = b""
        while chunk := await stream.read(READ_SIZE):
            if len(kept) < CAPTURE_LIMIT:
                kept += chunk[: CAPTURE_LIMIT - len(kept)]
            pending += chunk
            *lines, pending = pending.split(b"\n")
            # A line without an end must not grow without bound either.
            if len(pending) > READ_SIZE:
                lines.append(pending)
                pending = b""
            for line in lines:
                if line.strip():
                    _log.log(level, "%s run: %s", self._tool, line.decode("utf-8", "replace"))
        if pending.strip():
            _log.log(level, "%s run: %s", self._tool, pending.decode("utf-8", "replace"))

    async def _wait(self) -> int:
        await asyncio.wait(self._readers)
        return await self._process.wait()

    async def terminate(self, wait_seconds: float) -> None:
        """Wait ``wait_seconds`` for a voluntary exit, then SIGTERM, then SIGKILL the group."""
        if not self._exited.done():
            await asyncio.wait({self._exited}, timeout=wait_seconds)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if self._exited.done():
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signum)
            await asyncio.wait({self._exited}, timeout=KILL_DELAY_SECONDS)
        if not self._exited.done():
            # Something in the group keeps the output pipes open: stop reading them.
            for reader in self._readers:
                reader.cancel()
        await asyncio.wait({self._exited})
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Leftovers of the group (the real tools have none; a simulator might).
            os.killpg(self._process.pid, signal.SIGKILL)
