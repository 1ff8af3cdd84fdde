"""Runs the ``clone`` instruction's git commands on the worker host, into a workspace directory.

The steps come from ``domain.clone``; this module runs them with the host's ``git``, streams
their output (the token replaced) into the command's log, and retries the network steps with
backoff when git's message names network trouble. The token reaches git only through its
environment (``domain.clone.git_environment``): it is never in an argument, a URL or a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from domain.clone import (
    TOKEN_VARIABLE,
    CloneError,
    GitSource,
    GitStep,
    clone_steps,
    failure_line,
    fetch_commit_step,
    finishing_steps,
    git_environment,
    is_transient,
    needs_reset,
    reset_step,
)
from domain.ports import OutputSink

HIDDEN = "HIDDEN-BY-CIRRUS"
OUTPUT_KEPT = 64 * 1024  # the tail of a step's output kept to explain a failure

Sleep = Callable[[float], Awaitable[None]]


class TransientGitError(CloneError):
    """A network step failed in a way worth retrying."""


class GitRunner:
    """Runs git steps for one clone: environment, output scrubbing and retries."""

    def __init__(
        self,
        source: GitSource,
        token: str,
        output: OutputSink,
        *,
        attempts: int = 4,
        initial_wait: float = 1.0,
        max_wait: float = 15.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._output = output
        self._token = token
        self._attempts = attempts
        self._wait = wait_exponential(multiplier=initial_wait, max=max_wait)
        self._sleep = sleep
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.pop(TOKEN_VARIABLE, None)
        env.update(git_environment(source), LC_ALL="C")
        if token:
            env[TOKEN_VARIABLE] = token
        self._env = env

    def scrub(self, text: str) -> str:
        """``text`` with the token replaced."""
        return text.replace(self._token, HIDDEN) if self._token else text

    async def line(self, text: str) -> None:
        """Write one line of the clone's own to the log."""
        await self._output.write(self.scrub(text).encode("utf-8") + b"\n")

    async def run(self, step: GitStep, fresh_directory: Path | None = None) -> str:
        """Run ``step`` (retried when transient); return its output.

        ``fresh_directory`` is emptied before each retry (a clone needs a new directory).
        """
        if step.announce:
            await self.line(step.announce)
        if not step.network:
            return await self._once(step)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientGitError),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    await self.line("Retrying after a network error...")
                    if fresh_directory is not None:
                        await asyncio.to_thread(shutil.rmtree, fresh_directory, True)
                return await self._once(step)
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    async def capture(self, *args: str) -> tuple[int, str]:
        """Run ``git args`` quietly; return its status and output (for queries like rev-parse)."""
        process = await self._start(args, stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode("utf-8", "replace").strip()

    async def _start(self, args: tuple[str, ...], stdout: int) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                "git",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise CloneError("cannot clone: git is not installed on the worker host") from exc

    async def _once(self, step: GitStep) -> str:
        process = await self._start(step.args, stdout=asyncio.subprocess.PIPE)
        kept = ""
        try:
            assert process.stdout is not None
            while line := await process.stdout.readline():
                text = self.scrub(line.decode("utf-8", "replace"))
                kept = (kept + text)[-OUTPUT_KEPT:]
                await self._output.write(text.encode("utf-8"))
            status = await process.wait()
        except BaseException:
            # git runs helpers (remote-https, index-pack) in its session: end them all.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.shield(process.wait())
            raise
        if status != 0:
            reason = f"git {_verb(step)} failed: {failure_line(kept)}"
            if step.network and is_transient(kept):
                raise TransientGitError(reason)
            raise CloneError(reason)
        return kept


def _verb(step: GitStep) -> str:
    args = list(step.args)
    if args[:1] == ["-C"]:
        args = args[2:]
    return args[0] if args else "command"


async def fetch_git(
    source: GitSource,
    directory: Path,
    token: str,
    output: OutputSink,
    *,
    retry_options: Mapping[str, float] | None = None,
) -> str:
    """Clone ``source`` into ``directory`` (new) at exactly its commit; return HEAD's SHA.

    ``CloneError`` carries git's reason, the token never in it.
    """
    options = dict(retry_options or {})
    git = GitRunner(
        source,
        token,
        output,
        attempts=int(options.get("attempts", 4)),
        initial_wait=options.get("initial_wait", 1.0),
        max_wait=options.get("max_wait", 15.0),
    )
    # Checked before cloning: git fails the checkout of LFS files on its own, less clearly,
    # when the machine's git configuration names the missing git-lfs as a filter.
    if source.lfs and shutil.which("git-lfs") is None:
        raise CloneError(
            "CIRRUS_CLONE_LFS is true, but git-lfs is not installed on the worker host"
        )
    if source.depth > 0:
        await git.line(f"Limiting clone depth to {source.depth}!")
    target = str(directory)
    for step in clone_steps(source, target):
        await git.run(step, fresh_directory=directory if step.args[0] == "clone" else None)
    _, head = await git.capture("-C", target, "rev-parse", "HEAD")
    if source.merge_ref:
        await git.line(
            '"Merge for PRs" resolution strategy: no hard reset, the merge commit stays.'
        )
    elif needs_reset(source, head):
        await git.line(f"HEAD is at {head}.")
        status, _ = await git.capture("-C", target, "cat-file", "-e", f"{source.commit}^{{commit}}")
        if status != 0:
            await git.run(fetch_commit_step(source, target))
        await git.line(f"Hard resetting to {source.commit}...")
        await git.run(reset_step(source, target))
    for step in finishing_steps(source, target):
        await git.run(step)
    _, head = await git.capture("-C", target, "rev-parse", "HEAD")
    await git.line(f"Checked out {head} on {source.branch} branch.")
    await git.line("Successfully cloned!")
    return head
