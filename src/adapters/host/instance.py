"""The ``none`` isolation: a task's commands run directly on the host, in a private directory.

Scripts are written to a private scripts directory (not the working directory, which belongs to
the task) and run as ``/bin/sh -e <file>``: ``/bin/sh`` semantics, stopping at the first failing
line, without the argument-length limit of ``sh -c``. ``CIRRUS_SHELL`` and ``CIRRUS_WORKING_DIR``
in a script's environment change that as ``domain.script_launch`` says; ``$CIRRUS_ENV`` files
live in the scripts directory too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from adapters.host.file_removal import remove_files, remove_tree
from adapters.host.process import BackgroundScript, ScriptProcess, supervise
from adapters.host.tree_files import copy_path, list_tree_files
from domain.errors import InstanceError
from domain.ports import OutputSink
from domain.script_launch import script_launch

# The biggest ``$CIRRUS_ENV`` file read back; a bigger one is refused rather than loaded.
ENV_FILE_LIMIT = 16 * 1024 * 1024
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

    async def probe_environment(self) -> Mapping[str, str]:
        """The worker's own environment: scripts start with it."""
        return dict(os.environ)

    async def create_env_file(self) -> str:
        """An empty ``$CIRRUS_ENV`` file in the scripts directory."""
        self._ensure_open()
        path = Path(self._scripts_directory, f"cirrus-env-{next(self._script_numbers)}")
        try:
            await asyncio.to_thread(_write_file, path, b"")
        except OSError as exc:
            raise InstanceError(f"cannot create the CIRRUS_ENV file {path}: {exc}") from exc
        return str(path)

    async def take_env_file(self, path: str) -> str:
        """The text written to ``path`` (empty if it is gone); the file is removed."""
        try:
            return await asyncio.to_thread(read_untrusted_text, Path(path))
        except OSError as exc:
            raise InstanceError(f"cannot read the CIRRUS_ENV file {path}: {exc}") from exc
        finally:
            await asyncio.shield(asyncio.to_thread(remove_files, [path]))

    async def run_script(self, script: str, env: Mapping[str, str], output: OutputSink) -> int:
        """Run ``script`` to its end; return its exit status (128 + N for death by signal N)."""
        argv, path, cwd = await self._prepare(script, env)
        try:
            process = await ScriptProcess.start(argv, env, cwd)
            return await supervise(process, output, self._grace_seconds)
        finally:
            if path is not None:
                await asyncio.shield(asyncio.to_thread(remove_files, [path]))

    async def start_background(
        self, script: str, env: Mapping[str, str], output: OutputSink
    ) -> BackgroundScript:
        """Start ``script`` and return at once; its output streams into ``output``."""
        argv, _, cwd = await self._prepare(script, env)
        process = await ScriptProcess.start(argv, env, cwd)
        stop_requested = asyncio.Event()
        supervisor = asyncio.create_task(
            supervise(process, output, self._grace_seconds, stop_requested),
            name=f"background script {argv[0]}",
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

    async def copy_in(self, local_dir: str, remote_dir: str) -> None:
        """Move the files of ``local_dir`` into ``remote_dir`` (relative: to the working dir).

        A rename on the same file system, so a clone lands in place at no cost; a copy else.
        """
        self._ensure_open()
        target = Path(self._working_directory, remote_dir)  # an absolute ``remote_dir`` wins
        try:
            await asyncio.to_thread(move_tree, Path(local_dir), target)
        except OSError as exc:
            raise InstanceError(f"cannot put the files into {target}: {exc}") from exc

    def host_path(self, remote_path: str) -> str:
        """Where the worker reads ``remote_path`` directly: the path itself (relative: to the
        working directory)."""
        return os.path.join(self._working_directory, remote_path)  # an absolute path wins

    async def list_files(self, root: str) -> tuple[str, ...]:
        """The regular files under ``root`` (relative: to the working directory)."""
        try:
            return await asyncio.to_thread(list_tree_files, self.host_path(root))
        except OSError as exc:
            raise InstanceError(f"cannot list the files under {root}: {exc}") from exc

    async def copy_out(self, remote_path: str, local_path: str) -> bool:
        """Copy the file or directory ``remote_path`` to the host's ``local_path``."""
        source = self.host_path(remote_path)
        try:
            return await asyncio.to_thread(copy_path, source, local_path)
        except (OSError, shutil.Error) as exc:
            raise InstanceError(f"cannot copy {source} out: {exc}") from exc

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

    async def _prepare(
        self, script: str, env: Mapping[str, str]
    ) -> tuple[list[str], str | None, str]:
        """The argv that runs ``script``, its file (if any) and the directory it starts in.

        The working directory is made when missing; a failure to start ``argv`` is the
        script's failure (``InstanceError`` naming the program).
        """
        self._ensure_open()
        launch = script_launch(script, env, self._working_directory)
        try:
            await asyncio.to_thread(os.makedirs, launch.working_directory, exist_ok=True)
        except OSError as exc:
            raise InstanceError(
                f"cannot create the working directory {launch.working_directory}: {exc}"
            ) from exc
        if not launch.needs_file:
            return list(launch.argv), None, launch.working_directory
        path = await self._write_script(launch.text)
        return [*launch.argv, path], path, launch.working_directory

    async def _write_script(self, text: str) -> str:
        """Store ``text`` as a new file in the scripts directory; return its path."""
        self._ensure_open()
        path = Path(self._scripts_directory, f"script-{next(self._script_numbers)}.sh")
        try:
            await asyncio.to_thread(_write_file, path, text.encode("utf-8"))
        except OSError as exc:
            raise InstanceError(f"cannot write the script file {path}: {exc}") from exc
        return str(path)


def read_untrusted_text(path: Path) -> str:
    """Read a file the task may have replaced: no symlink, no FIFO, bounded size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise OSError("not a regular file")
        data = file.read(ENV_FILE_LIMIT + 1)
    if len(data) > ENV_FILE_LIMIT:
        raise OSError(f"bigger than {ENV_FILE_LIMIT} bytes")
    return data.decode("utf-8", "replace")


def _write_file(path: Path, contents: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents)


def move_tree(source: Path, target: Path) -> None:
    """Move the entries of ``source`` into ``target`` (made when missing), replacing files.

    Directories on both sides are merged; an entry that cannot be renamed (another file system)
    is copied, symlinks as symlinks.
    """
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        destination = target / entry.name
        if _real_dir(entry) and _real_dir(destination):
            move_tree(entry, destination)
            continue
        if destination.is_symlink() or destination.is_file():
            destination.unlink()
        elif destination.exists():
            remove_tree(str(destination))
        try:
            os.rename(entry, destination)
        except OSError:
            if _real_dir(entry):
                shutil.copytree(entry, destination, symlinks=True)
            else:
                shutil.copy2(entry, destination, follow_symlinks=False)


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()
