"""A shell script running on the host in its own session, and the supervision of its lifetime.

The script's stdout and stderr share one pipe that this process creates itself (not asyncio's
subprocess pipes), so the reading end stays ours: it is read in bounded chunks, each awaited
into the output sink (back-pressure), and can be abandoned when a process that escaped the
script's session keeps it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Mapping, Sequence

from domain.errors import InstanceError
from domain.ports import OutputSink

CHUNK_SIZE = 64 * 1024
# How often a waiting read wakes up to notice that the script's session has been killed.
READ_POLL_SECONDS = 0.2
# Once the session is dead only buffered bytes remain; waiting longer than this for more means
# a process outside the session (it called setsid) holds the pipe, and it is abandoned.
DRAIN_BUDGET_SECONDS = 2.0


def exit_status(returncode: int) -> int:
    """A shell-style exit status: death by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class ScriptProcess:
    """One started script: its session leader, and the reading end of its output pipe."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        transport: asyncio.ReadTransport,
    ) -> None:
        self._process = process
        self._reader = reader
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._draining_since: float | None = None

    @classmethod
    async def start(cls, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> ScriptProcess:
        """Start ``argv`` in a new session with stdin from /dev/null and stdout+stderr merged."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        try:
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=write_fd,
                    stderr=write_fd,
                    cwd=cwd,
                    env=dict(env),
                    start_new_session=True,
                )
            finally:
                # The child holds its own copy; ours must go or EOF never comes.
                os.close(write_fd)
        except OSError as exc:
            os.close(read_fd)
            raise InstanceError(f"cannot start {argv[0]}: {exc}") from exc
        except BaseException:
            os.close(read_fd)
            raise
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        # The reader pauses the pipe once it holds twice its limit: memory stays bounded.
        reader = asyncio.StreamReader(limit=CHUNK_SIZE, loop=loop)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe
            )
        except BaseException:
            pipe.close()
            _kill_group(process.pid, signal.SIGKILL)
            await process.wait()
            raise
        return cls(process, reader, transport)

    @property
    def pid(self) -> int:
        """The session leader's process id (also the process group id)."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The session leader's return code once it has been reaped."""
        return self._process.returncode

    async def wait(self) -> int:
        """Wait for the session leader to exit; return its exit status."""
        return exit_status(await self._process.wait())

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to every process still in the script's process group."""
        _kill_group(self.pid, signum)

    def start_draining(self) -> None:
        """The group is dead: from now on, reads that wait too long give up."""
        if self._draining_since is None:
            self._draining_since = self._loop.time()

    async def pump(self, output: OutputSink) -> None:
        """Copy the output into ``output`` chunk by chunk until EOF or an abandoned drain."""
        budget = DRAIN_BUDGET_SECONDS
        while True:
            started = self._loop.time()
            chunk: bytes | None
            try:
                async with asyncio.timeout(READ_POLL_SECONDS):
                    chunk = await self._reader.read(CHUNK_SIZE)
            except TimeoutError:
                chunk = None
            if self._draining_since is not None:
                # Only time spent waiting for bytes counts, never time the sink takes.
                budget -= self._loop.time() - max(started, self._draining_since)
            if chunk == b"":
                return
            if chunk:
                await output.write(chunk)
            if budget <= 0:
                return

    def close_pipe(self) -> None:
        """Close our end of the output pipe (idempotent)."""
        self._transport.close()


def _kill_group(pgid: int, signum: int) -> None:
    """Signal a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class BackgroundScript:
    """A background script's handle, on the host or in a VM (whatever ``supervisor`` watches);
    ``stop`` kills its process group and drains its output."""

    def __init__(self, supervisor: asyncio.Task[int], stop_requested: asyncio.Event) -> None:
        self._supervisor = supervisor
        self._stop_requested = stop_requested

    @property
    def done(self) -> bool:
        """Whether the script has ended and its output has been drained."""
        return self._supervisor.done()

    async def stop(self) -> None:
        """SIGINT its group, SIGKILL after the grace period, wait for the output; idempotent.

        Re-raises the error of the output sink if writing the script's output failed.
        """
        self._stop_requested.set()
        await asyncio.wait({self._supervisor})
        if not self._supervisor.cancelled():
            error = self._supervisor.exception()
            if error is not None:
                raise error


async def supervise(
    script: ScriptProcess,
    output: OutputSink,
    grace_seconds: float,
    stop_requested: asyncio.Event | None = None,
) -> int:
    """Stream ``script``'s output until it exits; kill what it left behind; return its status.

    On cancellation, a failing sink or ``stop_requested``, the group gets SIGINT, then SIGKILL
    after ``grace_seconds``; the cleanup completes even if cancelled again, and the cancellation
    (or the sink's error) is re-raised afterwards. A stop request returns the final status.
    """
    pump = asyncio.create_task(script.pump(output))
    exited = asyncio.ensure_future(script.wait())
    stop = asyncio.ensure_future(stop_requested.wait()) if stop_requested else None
    waiters = {exited, pump} if stop is None else {exited, pump, stop}
    try:
        while not exited.done():
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                pump.result()  # a failing sink ends the script: see the handler below
                waiters.discard(pump)
            if stop is not None and stop.done():
                await finish_despite_cancellation(_terminate(script, pump, exited, grace_seconds))
                return await exited
        # The shell is gone; whatever it left in its group would hold the pipe open forever.
        script.signal_group(signal.SIGKILL)
        script.start_draining()
        await pump
        return await exited
    except BaseException:
        await finish_despite_cancellation(_terminate(script, pump, exited, grace_seconds))
        raise
    finally:
        if stop is not None:
            stop.cancel()
        script.close_pipe()


async def _terminate(
    script: ScriptProcess,
    pump: asyncio.Task[None],
    exited: asyncio.Future[int],
    grace_seconds: float,
) -> None:
    """SIGINT the group, SIGKILL it after the grace period, then drain what is left."""
    if not exited.done():
        script.signal_group(signal.SIGINT)
        await asyncio.wait({exited}, timeout=grace_seconds)
    script.signal_group(signal.SIGKILL)
    await asyncio.wait({exited})
    script.start_draining()
    # The sink may be what failed or what blocks: give it a bounded chance, then give up.
    await asyncio.wait({pump}, timeout=DRAIN_BUDGET_SECONDS + READ_POLL_SECONDS)
    if not pump.done():
        pump.cancel()
    await asyncio.wait({pump})
    if not pump.cancelled():
        pump.exception()  # retrieved on purpose: the caller re-raises the first error


async def finish_despite_cancellation(cleanup: Awaitable[None]) -> None:
    """Run ``cleanup`` to its end even if the caller is cancelled meanwhile, then re-cancel."""
    task = asyncio.ensure_future(cleanup)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
