"""The ``none`` isolation: a task's commands run directly on the host, in a private directory.

Scripts are written to a private scripts directory (not the working directory, which belongs to
the task) and run as ``/bin/sh -e <file>``: ``/bin/sh`` semantics, stopping at the first failing
line, without the argument-length limit of ``sh -c``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from adapters.host.file_removal import remove_files, remove_tree
from adapters.host.process import BackgroundScript, ScriptProcess, supervise
from domain.errors import InstanceError
from domain.ports import OutputSink

SHELL = "/bin/sh"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def _name_part(task_id: str) -> str:
    """A task id made safe for a directory name."""
    return _UNSAFE_NAME_CHARS.sub("_", task_id)[:64] or "task"


class HostInstanceFactory:
    """Creates host instances: one fresh ``cirrus-task-<id>-XXXX`` directory (0700) per task."""

    def __init__(self, base_dir: str | None = None, grace_seconds: float = 10.0) -> None:
        self._base_dir = base_dir
        self._grace_seconds = grace_seconds

    async def create(self, task_id: str) -> HostInstance:
        """Create the task's working and scripts directories; ``InstanceError`` if impossible."""
        name = _name_part(task_id)
        try:
            working = await asyncio.to_thread(
                tempfile.mkdtemp, prefix=f"cirrus-task-{name}-", dir=self._base_dir
            )
        except OSError as exc:
            raise InstanceError(f"cannot create the working directory: {exc}") from exc
        try:
            scripts = await asyncio.to_thread(
                tempfile.mkdtemp, prefix=f"cirrus-scripts-{name}-", dir=self._base_dir
            )
        except OSError as exc:
            await asyncio.to_thread(remove_tree, working)
            raise InstanceError(f"cannot create the scripts directory: {exc}") from exc
        return HostInstance(working, scripts, self._grace_seconds)


class HostInstance:
    """A task's private directory on the host; scripts run as the worker's user."""

    def __init__(
        self, working_directory: str, scripts_directory: str, grace_seconds: float
    ) -> None:
        self._working_directory = working_directory
        self._scripts_directory = scripts_directory
        self._grace_seconds = grace_seconds
        self._script_numbers = itertools.count(1)
        self._background: list[BackgroundScript] = []
        self._closed = False

    @property
    def working_directory(self) -> str:
        """The task's working directory."""
        return self._working_directory

    def base_environment(self) -> Mapping[str, str]:
        """A copy of the worker's own environment."""
        return dict(os.environ)

    async def run_script(self, script: str, env: Mapping[str, str], output: OutputSink) -> int:
        """Run ``script`` to its end; return its exit status (128 + N for death by signal N)."""
        path = await self._write_script(script)
        try:
            process = await ScriptProcess.start([SHELL, "-e", path], env, self._working_directory)
            return await supervise(process, output, self._grace_seconds)
        finally:
            await asyncio.shield(asyncio.to_thread(remove_files, [path]))

    async def start_background(
        self, script: str, env: Mapping[str, str], output: OutputSink
    ) -> BackgroundScript:
        """Start ``script`` and return at once; its output streams into ``output``."""
        path = await self._write_script(script)
        process = await ScriptProcess.start([SHELL, "-e", path], env, self._working_directory)
        stop_requested = asyncio.Event()
        supervisor = asyncio.create_task(
            supervise(process, output, self._grace_seconds, stop_requested),
            name=f"background script {path}",
        )
        handle = BackgroundScript(supervisor, stop_requested)
        self._background.append(handle)
        return handle

    async def write_file(self, path: str, contents: bytes) -> None:
        """Write ``contents`` to ``path`` (relative to the working directory), making parents."""
        self._ensure_open()
        target = Path(self._working_directory, path)  # an absolute ``path`` wins
        try:
            await asyncio.to_thread(_write_file, target, contents)
        except OSError as exc:
            raise InstanceError(f"cannot write {target}: {exc}") from exc

    async def close(self) -> None:
        """Stop the background scripts and remove the task's directories; idempotent."""
        if self._closed:
            return
        self._closed = True
        for handle in self._background:
            # The task is over: a failing log sink of a background script changes nothing now.
            with contextlib.suppress(Exception):
                await handle.stop()
        self._background.clear()
        for directory in (self._working_directory, self._scripts_directory):
            try:
                await asyncio.to_thread(remove_tree, directory)
            except OSError as exc:
                raise InstanceError(f"cannot remove {directory}: {exc}") from exc

    def _ensure_open(self) -> None:
        if self._closed:
            raise InstanceError("the host instance is closed")

    async def _write_script(self, script: str) -> str:
        """Store ``script`` as a new file in the scripts directory; return its path."""
        self._ensure_open()
        path = Path(self._scripts_directory, f"script-{next(self._script_numbers)}.sh")
        text = script if script.endswith("\n") else script + "\n"
        try:
            await asyncio.to_thread(_write_file, path, text.encode("utf-8"))
        except OSError as exc:
            raise InstanceError(f"cannot write the script file {path}: {exc}") from exc
        return str(path)


def _write_file(path: Path, contents: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents)
