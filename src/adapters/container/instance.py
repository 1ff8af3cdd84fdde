"""The ``container`` isolation: a task's commands run in a long-lived container, one exec each.

Per task, a private host directory (0700) holds two directories bind-mounted into the container:
the working directory (``WORKING_DIR``, the commands' cwd) and the scripts directory
(``SCRIPTS_DIR``, the scripts and their wrappers). The container's main process only sleeps under
the engine's init (``--init``: it reaps orphans, so killed process groups really disappear, and
forwards the stop signal). Unlike the original, a script's exit status is honoured.
The task's additional containers (``adapters.container.additional``) start once the container
runs and are ready before ``create`` returns; they are removed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import posixpath
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from adapters.container import files_out
from adapters.container.additional import DEFAULT_READINESS_SECONDS, AdditionalContainers
from adapters.container.engine import ContainerEngine, first_error_line
from adapters.container.session import ExecSession, wrapper_script
from adapters.host.file_removal import remove_files, remove_tree
from adapters.host.instance import read_untrusted_text
from adapters.host.process import BackgroundScript, finish_despite_cancellation
from domain.agent_environment import PRINT_ENVIRONMENT, parse_env_output
from domain.errors import InstanceError
from domain.isolation import ContainerIsolation, ContainerVolume
from domain.ports import OutputSink
from domain.script_launch import script_launch

WORKING_DIR = "/tmp/cirrus-ci/working-dir"
SCRIPTS_DIR = "/tmp/cirrus-ci/scripts"
TASK_LABEL = "org.cirruslabs.cirrus-worker.task"
PID_LABEL = "org.cirruslabs.cirrus-worker.pid"
SHELL = "/bin/sh"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
# Writes stdin to $1, making its parent directories; runs as the image's user, in the container.
_WRITE_FILE = 'mkdir -p "$(dirname "$1")" && cat >"$1"'


def _name_part(task_id: str) -> str:
    """A task id made safe for container and directory names."""
    return _UNSAFE_NAME_CHARS.sub("_", task_id)[:64] or "task"


def volume_argument(volume: ContainerVolume) -> str:
    """The ``-v`` value of a bind mount; ``InstanceError`` for paths the syntax cannot carry."""
    for path in (volume.source, volume.target):
        if not path or ":" in path or "," in path:
            raise InstanceError(f"unsupported volume path {path!r}")
    if not posixpath.isabs(volume.target):
        raise InstanceError(f"volume target {volume.target!r} is not an absolute path")
    return f"{volume.source}:{volume.target}" + (":ro" if volume.read_only else "")


def _parse_environment(text: str) -> dict[str, str]:
    """The ``NAME=VALUE`` list printed by ``inspect --format '{{json .Config.Env}}'``."""
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise InstanceError(f"unreadable container environment: {exc}") from exc
    if not isinstance(entries, list):
        return {}
    environment: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, str) and "=" in entry:
            name, _, value = entry.partition("=")
            environment[name] = value
    return environment


class ContainerInstanceFactory:
    """Creates one container per task with the docker or podman command line."""

    def __init__(
        self,
        engine: str | None = None,
        grace_seconds: float = 10.0,
        network: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        base_dir: str | None = None,
        readiness_seconds: float = DEFAULT_READINESS_SECONDS,
    ) -> None:
        self._engine_name = engine
        self._readiness_seconds = readiness_seconds
        self._engine: ContainerEngine | None = None
        self._grace_seconds = grace_seconds
        self._network = network
        self._extra_env = dict(extra_env or {})
        self._base_dir = base_dir

    @property
    def engine(self) -> ContainerEngine:
        """The engine, chosen on first use (so a worker without one starts, and refuses tasks)."""
        if self._engine is None:
            self._engine = ContainerEngine(self._engine_name)
        return self._engine

    async def create(self, task_id: str, isolation: ContainerIsolation) -> ContainerInstance:
        """Start the task's container; ``InstanceError`` (nothing left behind) if it cannot."""
        engine = self.engine
        name = _name_part(task_id)
        try:
            root = await asyncio.to_thread(
                tempfile.mkdtemp, prefix=f"cirrus-task-{name}-", dir=self._base_dir
            )
        except OSError as exc:
            raise InstanceError(f"cannot create the task directory: {exc}") from exc
        container = f"cirrus-task-{name}-{secrets.token_hex(4)}"
        additional = AdditionalContainers(
            engine, container, self._labels(task_id), Path(root), self._readiness_seconds
        )
        try:
            args = await asyncio.to_thread(self._prepare, Path(root), isolation)
            args = ["run", "--detach", "--name", container, *self._labels(task_id), *args]
            if await engine.image_exists(isolation.image):
                args.insert(1, "--pull=never")
            args += ["--entrypoint", "sleep", isolation.image, "infinity"]
            await engine.run(args)
            inspected = await engine.run(["inspect", "--format", "{{json .Config.Env}}", container])
            environment = _parse_environment(inspected.stdout)
            await additional.start(isolation.additional_containers)
        except BaseException:
            # Also on cancellation: a container the engine started must not outlive the task.
            await finish_despite_cancellation(self._discard(engine, additional, container, root))
            raise
        return ContainerInstance(
            engine, container, root, environment, self._grace_seconds, additional
        )

    def _labels(self, task_id: str) -> list[str]:
        return ["--label", f"{TASK_LABEL}={task_id}", "--label", f"{PID_LABEL}={os.getpid()}"]

    def _prepare(self, root: Path, isolation: ContainerIsolation) -> list[str]:
        """Make the mounted directories and volume sources; return the ``run`` options."""
        working, scripts = root / "working-dir", root / "scripts"
        for directory in (working, scripts):
            directory.mkdir()
            # Inside a 0700 parent, so no other host user gets in; an image whose USER is not
            # root must still be able to write its working directory and the wrapper's files.
            directory.chmod(0o777)
        args = [
            "--init",
            "--security-opt",
            "label=disable",
            "--workdir",
            WORKING_DIR,
            "--volume",
            f"{working}:{WORKING_DIR}",
            "--volume",
            f"{scripts}:{SCRIPTS_DIR}",
        ]
        if isolation.cpu > 0:
            args += ["--cpus", f"{isolation.cpu:g}"]
        if isolation.memory > 0:
            args += ["--memory", f"{isolation.memory}m"]
        if self._network:
            args += ["--network", self._network]
        if self._extra_env:
            env_file = root / "container.env"
            lines = []
            for key, value in self._extra_env.items():
                if "\n" in key or "\n" in value or "=" in key:
                    raise InstanceError(f"unsupported container environment variable {key!r}")
                lines.append(f"{key}={value}\n")
            env_file.write_text("".join(lines))
            args += ["--env-file", str(env_file)]
        for volume in isolation.volumes:
            argument = volume_argument(volume)
            try:
                os.makedirs(volume.source, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise InstanceError(f"cannot create volume source {volume.source}: {exc}") from exc
            args += ["--volume", argument]
        return args

    @staticmethod
    async def _discard(
        engine: ContainerEngine, additional: AdditionalContainers, container: str, root: str
    ) -> None:
        with contextlib.suppress(InstanceError):
            await additional.remove()  # first: they share the namespace of ``container``
        with contextlib.suppress(InstanceError):
            await engine.remove_containers([container])
        with contextlib.suppress(OSError):
            await asyncio.to_thread(remove_tree, root)


class ContainerInstance:
    """A task's running container; each script is one ``exec`` in the working directory."""

    def __init__(
        self,
        engine: ContainerEngine,
        container: str,
        host_root: str,
        environment: Mapping[str, str],
        grace_seconds: float,
        additional: AdditionalContainers | None = None,
    ) -> None:
        self._engine = engine
        self._additional = additional
        self._container = container
        self._host_root = host_root
        self._scripts = Path(host_root, "scripts")
        self._environment = dict(environment)
        self._grace_seconds = grace_seconds
        self._script_numbers = itertools.count(1)
        self._background: list[BackgroundScript] = []
        self._closed = False
        self._probed: dict[str, str] | None = None

    @property
    def container(self) -> str:
        """The container's name."""
        return self._container

    @property
    def host_directory(self) -> str:
        """The host directory holding the mounted working and scripts directories."""
        return self._host_root

    @property
    def working_directory(self) -> str:
        """The task's working directory inside the container."""
        return WORKING_DIR

    def base_environment(self) -> Mapping[str, str]:
        """The container's own environment (image and engine defaults, ``extra_env``)."""
        return dict(self._environment)

    async def probe_environment(self) -> Mapping[str, str]:
        """What ``env`` prints in an ``exec`` like a script's (``HOME`` included); asked once."""
        if self._probed is None:
            self._ensure_open()
            args = ["exec", "--workdir", WORKING_DIR, self._container, SHELL, "-c"]
            result = await self._engine.run([*args, PRINT_ENVIRONMENT], check=False)
            if result.returncode != 0:
                raise InstanceError(
                    f"cannot read the environment of container {self._container}: "
                    f"{first_error_line(result.stderr) or f'status {result.returncode}'}"
                )
            self._probed = parse_env_output(result.stdout)
        return dict(self._probed)

    async def create_env_file(self) -> str:
        """An empty, world-writable ``$CIRRUS_ENV`` file in the mounted scripts directory."""
        self._ensure_open()
        name = f"cirrus-env-{next(self._script_numbers)}"
        try:
            await asyncio.to_thread(_write_private, self._scripts / name, "", 0o666)
        except OSError as exc:
            raise InstanceError(f"cannot create the CIRRUS_ENV file: {exc}") from exc
        return posixpath.join(SCRIPTS_DIR, name)

    async def take_env_file(self, path: str) -> str:
        """The text written to a ``create_env_file`` file; the file is removed.

        The host reads it without following a link the task may have put in its place.
        """
        if posixpath.dirname(path) != SCRIPTS_DIR:
            raise InstanceError(f"{path} is not a CIRRUS_ENV file of this container")
        host_path = self._scripts / posixpath.basename(path)
        try:
            return await asyncio.to_thread(read_untrusted_text, host_path)
        except OSError as exc:
            raise InstanceError(f"cannot read the CIRRUS_ENV file {path}: {exc}") from exc
        finally:
            await asyncio.shield(asyncio.to_thread(remove_files, [host_path]))

    async def run_script(self, script: str, env: Mapping[str, str], output: OutputSink) -> int:
        """Run ``script`` to its end; return its exit status (128 + N for death by signal N)."""
        session, files = await self._start(script, env)
        try:
            return await session.supervise(output, self._grace_seconds)
        finally:
            await asyncio.shield(asyncio.to_thread(remove_files, files))

    async def start_background(
        self, script: str, env: Mapping[str, str], output: OutputSink
    ) -> BackgroundScript:
        """Start ``script`` and return at once; its output streams into ``output``."""
        session, files = await self._start(script, env)
        stop_requested = asyncio.Event()

        async def supervise() -> int:
            try:
                return await session.supervise(output, self._grace_seconds, stop_requested)
            finally:
                await asyncio.shield(asyncio.to_thread(remove_files, files))

        supervisor = asyncio.create_task(
            supervise(), name=f"background script in {self._container}"
        )
        handle = BackgroundScript(supervisor, stop_requested)
        self._background.append(handle)
        return handle

    async def write_file(self, path: str, contents: bytes) -> None:
        """Write ``contents`` to ``path`` (relative to the working directory) in the container.

        The file is written from inside the container, as the image's user: a host-side write
        into the mounted directory would follow symlinks the task may have planted there.
        """
        self._ensure_open()
        target = posixpath.join(WORKING_DIR, path)
        args = ["exec", "--interactive", self._container, SHELL, "-c", _WRITE_FILE, "sh", target]
        result = await self._engine.run(args, stdin=contents, check=False)
        if result.returncode != 0:
            reason = result.stderr.strip().splitlines()
            raise InstanceError(
                f"cannot write {target}: {reason[0] if reason else f'status {result.returncode}'}"
            )

    async def copy_in(self, local_dir: str, remote_dir: str) -> None:
        """Copy the files of host directory ``local_dir`` into ``remote_dir`` in the container.

        ``<engine> cp`` needs nothing in the image (no git, no tar); only the directory itself
        is made first (unless it is the mounted working directory), from inside, as the image's
        user.
        """
        self._ensure_open()
        target = posixpath.normpath(posixpath.join(WORKING_DIR, remote_dir))
        if target != WORKING_DIR:  # the mounted working directory exists already
            made = await self._engine.run(
                ["exec", self._container, "mkdir", "-p", target], check=False
            )
            if made.returncode != 0:
                raise InstanceError(
                    f"cannot create {target}: {first_error_line(made.stderr) or made.returncode}"
                )
        source = os.path.join(local_dir, ".")  # the directory's contents, not the directory
        result = await self._engine.run(["cp", source, f"{self._container}:{target}"], check=False)
        if result.returncode != 0:
            raise InstanceError(
                f"cannot copy the files into {target}: "
                f"{first_error_line(result.stderr) or f'status {result.returncode}'}"
            )

    def host_path(self, remote_path: str) -> str | None:
        """The bind mount's host path of a path under the working directory; ``None`` else."""
        host_working_dir = os.path.join(self._host_root, "working-dir")
        return files_out.mounted_path(WORKING_DIR, host_working_dir, remote_path)

    async def list_files(self, root: str) -> tuple[str, ...]:
        """The files under ``root`` (see ``adapters.container.files_out``)."""
        self._ensure_open()
        target = posixpath.normpath(posixpath.join(WORKING_DIR, root))
        return await files_out.list_files(
            self._engine, self._container, self.host_path(root), target
        )

    async def copy_out(self, remote_path: str, local_path: str) -> bool:
        """Copy ``remote_path`` out (see ``adapters.container.files_out``)."""
        self._ensure_open()
        source = posixpath.normpath(posixpath.join(WORKING_DIR, remote_path))
        mounted = self.host_path(remote_path)
        return await files_out.copy_out(self._engine, self._container, mounted, source, local_path)

    async def close(self) -> None:
        """Stop background scripts, remove the container and the task directory; idempotent."""
        if self._closed:
            return
        self._closed = True
        await finish_despite_cancellation(self._destroy())

    async def _destroy(self) -> None:
        for handle in self._background:
            # The task is over: a failing log sink of a background script changes nothing now.
            with contextlib.suppress(Exception):
                await handle.stop()
        self._background.clear()
        failure: InstanceError | None = None
        try:
            if self._additional is not None:
                # First: the engine refuses to remove a container whose namespace is shared.
                await self._additional.remove()
            await self._engine.remove_containers([self._container])
        except InstanceError as exc:
            failure = exc
        try:
            await asyncio.to_thread(remove_tree, self._host_root)
        except OSError as exc:
            failure = failure or InstanceError(f"cannot remove {self._host_root}: {exc}")
        if failure is not None:
            raise failure

    def _ensure_open(self) -> None:
        if self._closed:
            raise InstanceError("the container instance is closed")

    async def _start(self, script: str, env: Mapping[str, str]) -> tuple[ExecSession, list[Path]]:
        """Write the script and its wrapper, then start the exec; return it and its files."""
        self._ensure_open()
        number = next(self._script_numbers)
        names = [f"script-{number}.sh", f"run-{number}.sh", f"run-{number}.pid"]
        names.append(f"run-{number}.status")
        files = [self._scripts / name for name in names]
        inside = [posixpath.join(SCRIPTS_DIR, name) for name in names]
        launch = script_launch(script, env, WORKING_DIR)
        wrapper = wrapper_script(launch, inside[0], inside[2], inside[3], env)
        try:
            if launch.needs_file:
                await asyncio.to_thread(_write_private, files[0], launch.text)
            await asyncio.to_thread(_write_private, files[1], wrapper)
        except OSError as exc:
            await asyncio.to_thread(remove_files, files)
            raise InstanceError(f"cannot write the script file: {exc}") from exc
        try:
            session = await ExecSession.start(
                self._engine,
                self._container,
                WORKING_DIR,
                inside[1],
                self._host_root,
                pid_file=files[2],
                status_file=files[3],
            )
        except BaseException:
            await asyncio.shield(asyncio.to_thread(remove_files, files))
            raise
        return session, files


def _write_private(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a script file that the container's user can read whoever it is.

    The scripts directory is reachable only through its 0700 parent on the host, so no other
    host user can read a wrapper (and the secrets in its environment).
    """
    path.write_text(text)
    path.chmod(mode)
