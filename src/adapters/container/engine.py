"""The container engine's command line (``docker`` or ``podman``), run as asyncio subprocesses.

Both engines accept the same subset of commands used here (``run``, ``exec``, ``inspect``,
``ps``, ``rm``, ``image inspect``). Failures become ``InstanceError`` carrying the first
non-empty line the engine wrote to stderr, which is where both put the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.errors import InstanceError

BACKEND_VARIABLE = "CIRRUS_CONTAINER_BACKEND"
ENGINES = ("podman", "docker")  # the preference order when both are installed


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What one engine command returned."""

    returncode: int
    stdout: str
    stderr: str


def first_error_line(stderr: str) -> str:
    """The first non-empty line of ``stderr``, stripped (empty if there is none)."""
    for line in stderr.splitlines():
        if line.strip():
            return line.strip()
    return ""


def choose_engine(requested: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The engine to use: ``requested``, else ``$CIRRUS_CONTAINER_BACKEND``, else what is installed.

    When neither names one, podman is preferred over docker if both are on ``PATH``.
    """
    env = os.environ if environ is None else environ
    name = requested or env.get(BACKEND_VARIABLE, "")
    if name:
        if name not in ENGINES:
            raise InstanceError(
                f"unsupported container backend {name!r} (expected docker or podman)"
            )
        return name
    for candidate in ENGINES:
        if shutil.which(candidate, path=env.get("PATH")) is not None:
            return candidate
    raise InstanceError("no container engine found: install podman or docker")


class ContainerEngine:
    """One engine's command line; every call is a fresh subprocess."""

    def __init__(self, name: str | None = None) -> None:
        self._name = choose_engine(name)

    @property
    def name(self) -> str:
        """``docker`` or ``podman``."""
        return self._name

    @property
    def is_podman(self) -> bool:
        """Whether the engine is podman (some flags differ)."""
        return self._name == "podman"

    def command(self, *args: str) -> list[str]:
        """The argv of an engine command."""
        return [self._name, *args]

    async def run(
        self, args: Sequence[str], stdin: bytes | None = None, check: bool = True
    ) -> EngineResult:
        """Run ``<engine> args...`` to its end; ``InstanceError`` on failure when ``check``.

        Cancelling kills the engine client and waits for it before re-raising.
        """
        argv = self.command(*args)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise InstanceError(f"cannot run {self._name}: {exc}") from exc
        try:
            out, err = await process.communicate(stdin)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
            raise
        result = EngineResult(
            returncode=process.returncode if process.returncode is not None else -1,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
        )
        if check and result.returncode != 0:
            raise InstanceError(
                first_error_line(result.stderr)
                or f"{self._name} {args[0] if args else ''} exited with status {result.returncode}"
            )
        return result

    async def image_exists(self, image: str) -> bool:
        """Whether ``image`` is present in the engine's local storage."""
        result = await self.run(["image", "inspect", "--format", "{{.Id}}", image], check=False)
        return result.returncode == 0

    async def remove_containers(self, containers: Sequence[str]) -> None:
        """Force-remove ``containers`` and their anonymous volumes; absent ones are no error."""
        if not containers:
            return
        args = ["rm", "--force", "--volumes"]
        if self.is_podman:
            args += ["--time", "0"]  # podman's default would wait 10 s for SIGTERM first
        result = await self.run([*args, *containers], check=False)
        if result.returncode != 0:
            line = first_error_line(result.stderr)
            if "no such container" in line.lower():
                return
            raise InstanceError(line or f"{self._name} rm exited with {result.returncode}")
