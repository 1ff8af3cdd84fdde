"""Ports: what the application needs from the outside world, as ``typing.Protocol``s.

Adapters implement these structurally (they do not inherit from them); tests use hand-written
fakes. Every error a port raises is a ``domain.errors.CirrusError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.isolation import ContainerIsolation, Isolation
from domain.modifiers import ResourceModifier
from domain.protocol import (
    AgentAwareTask,
    ArtifactFileInfo,
    ArtifactsCommit,
    CacheInfo,
    CommandResult,
    CommandsResponse,
    PollRequest,
    PollResponse,
    RunningTasksStatus,
    TaskRef,
    UploadUrl,
    WorkerInfo,
)


class ControllerClient(Protocol):
    """One upstream controller, spoken to over ``CirrusWorkersService`` and ``CirrusCIService``.

    Each method makes one call: retrying is the caller's decision. Transient failures raise
    ``TransientControllerError``, refusals ``DefiniteControllerError`` (``SessionLostError`` for
    ``unauthenticated``).
    """

    @property
    def endpoint(self) -> str:
        """The controller's base URL."""
        ...

    async def register(self, worker_info: WorkerInfo) -> str:
        """Register with the registration token; return the session token (also kept inside)."""
        ...

    async def poll(self, request: PollRequest, timeout_seconds: float) -> PollResponse:
        """Poll for work; ``timeout_seconds`` bounds a long poll."""
        ...

    async def task_started(self, task: TaskRef) -> None:
        """Report that the task's instance exists and commands are about to run."""
        ...

    async def task_failed(self, task: TaskRef, message: str) -> None:
        """Report that the task could not run."""
        ...

    async def task_stopped(self, task: TaskRef) -> None:
        """Report that the task is over and its instance cleaned up."""
        ...

    async def update_status(self, disabled: bool) -> bool:
        """Set the worker's disabled flag; return the flag the controller now holds."""
        ...

    async def query_running_tasks(self) -> RunningTasksStatus:
        """Ask the controller which tasks it believes this worker runs."""
        ...

    async def initial_commands(self, task: TaskRef, local_timestamp: int) -> CommandsResponse:
        """Fetch the task's environment, commands, timeout and secrets."""
        ...

    async def report_command_updates(self, task: TaskRef, updates: Sequence[CommandResult]) -> None:
        """Report command status changes."""
        ...

    async def append_logs(
        self, task: TaskRef, command_name: str, data: bytes, offset: int | None = None
    ) -> int:
        """Append log bytes (at most 1 MiB) sent at ``offset`` of the log; return bytes logged."""
        ...

    async def heartbeat(self, task: TaskRef) -> None:
        """Tell the controller the task is alive."""
        ...

    async def report_agent_finished(self, task: TaskRef, results: Sequence[CommandResult]) -> None:
        """Report the final results of every command."""
        ...

    async def cache_info(
        self, task: TaskRef, cache_key: str, prefixes: Sequence[str] = ()
    ) -> CacheInfo | None:
        """The cache of ``cache_key`` (or the newest under ``prefixes``); ``None`` if none."""
        ...

    async def cache_download_urls(self, task: TaskRef, cache_key: str) -> tuple[str, ...]:
        """URLs to GET the cache's archive from (absolute, or paths starting with ``/blobs/``)."""
        ...

    async def cache_upload_url(self, task: TaskRef, cache_key: str) -> UploadUrl:
        """The URL (and headers) to PUT the cache's archive to."""
        ...

    async def artifact_upload_urls(
        self, task: TaskRef, name: str, files: Sequence[ArtifactFileInfo]
    ) -> tuple[UploadUrl, ...]:
        """One URL (and headers) per file of artifact ``name``, in the same order."""
        ...

    async def commit_artifacts(self, task: TaskRef, commit: ArtifactsCommit) -> None:
        """Make the uploaded files of an artifact visible."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class Clock(Protocol):
    """Wall and monotonic time."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds, for durations."""
        ...


class OutputSink(Protocol):
    """Receives a command's output bytes, in order."""

    async def write(self, data: bytes) -> None:
        """Take the next bytes of output (may wait: back-pressure)."""
        ...


class BackgroundProcess(Protocol):
    """A background script started by ``Instance.start_background``."""

    async def stop(self) -> None:
        """Kill it (process group / session) and wait for its output to be drained."""
        ...


class Instance(Protocol):
    """A created isolation instance (host dir, container, VM) that runs a task's commands.

    ``run_script`` and ``start_background`` run shell scripts with ``/bin/sh`` semantics in the
    instance's working directory, unless ``env`` says otherwise as the Cirrus agent read it:
    ``CIRRUS_SHELL`` (a shell command line, or ``direct``) and ``CIRRUS_WORKING_DIR`` (created
    when missing); see ``domain.script_launch``. Cancelling ``run_script`` (asyncio
    cancellation) interrupts the script: SIGINT to its process group (or the remote
    equivalent), SIGKILL after the grace period, and the cancellation is re-raised once the
    process is gone.
    """

    @property
    def working_directory(self) -> str:
        """The task's working directory inside the instance."""
        ...

    def base_environment(self) -> Mapping[str, str]:
        """The isolation's base environment for commands (before the task's own)."""
        ...

    async def probe_environment(self) -> Mapping[str, str]:
        """The environment a script starts with in the instance, before ``env`` is added."""
        ...

    async def create_env_file(self) -> str:
        """Create an empty file for a command's ``$CIRRUS_ENV``; return its path in the instance."""
        ...

    async def take_env_file(self, path: str) -> str:
        """Return what was written to a ``create_env_file`` file, and remove it."""
        ...

    async def run_script(self, script: str, env: Mapping[str, str], output: OutputSink) -> int:
        """Run ``script``; return its exit status (non-zero also for death by signal)."""
        ...

    async def start_background(
        self, script: str, env: Mapping[str, str], output: OutputSink
    ) -> BackgroundProcess:
        """Start ``script`` in the background and return a handle that stops it."""
        ...

    async def write_file(self, path: str, contents: bytes) -> None:
        """Write ``contents`` to ``path`` (relative paths: relative to the working directory)."""
        ...

    async def copy_in(self, local_dir: str, remote_dir: str) -> None:
        """Put the files of the worker host's ``local_dir`` into ``remote_dir`` of the instance.

        ``remote_dir`` is made when missing (relative: to the working directory); files already
        there are replaced. The caller gives ``local_dir`` up: its files may be moved away.
        """
        ...

    def host_path(self, remote_path: str) -> str | None:
        """The worker host's path of ``remote_path`` (relative: to the working directory) when
        the worker can read and write it there directly, else ``None`` (use the copies)."""
        ...

    async def list_files(self, root: str) -> tuple[str, ...]:
        """The regular files under ``root`` (relative: to the working directory), as sorted
        POSIX paths relative to ``root``; none when ``root`` does not exist."""
        ...

    async def copy_out(self, remote_path: str, local_path: str) -> bool:
        """Copy the file or directory ``remote_path`` (relative: to the working directory) to
        the worker host's ``local_path`` (which must not exist; its parent is made). Return
        ``False``, copying nothing, when ``remote_path`` does not exist."""
        ...

    async def close(self) -> None:
        """Destroy the instance and everything it created; idempotent."""
        ...


class InstanceFactory(Protocol):
    """Creates instances of one isolation kind (e.g. host directories for ``none``)."""

    async def create(self, task_id: str) -> Instance:
        """Create the instance of task ``task_id``; raise ``InstanceError`` if it cannot."""
        ...


# --- the worker's instances ---------------------------------------------------------------


class InstanceProvider(Protocol):
    """Creates the instance a task asks for."""

    async def create(
        self,
        task: AgentAwareTask,
        modifier: ResourceModifier | None,
        cli_env: Mapping[str, str] | None = None,
    ) -> Instance:
        """Create the task's instance; raise ``InstanceError`` if it cannot.

        ``cli_env`` (``TRACEPARENT``/``TRACESTATE``) goes to the isolation tool's processes.
        """
        ...


class ContainerFactory(Protocol):
    """Creates a task's container from its ``container`` isolation (image, cpu, volumes…)."""

    async def create(self, task_id: str, isolation: ContainerIsolation) -> Instance:
        """Start the task's container; raise ``InstanceError`` if it cannot."""
        ...


class WarmableInstance(Instance, Protocol):
    """A VM instance: an ``Instance`` that can also be warmed up as the standby."""

    @property
    def name(self) -> str:
        """The VM's name (``CIRRUS_VM_ID``)."""
        ...

    @property
    def attributes(self) -> Mapping[str, str | float]:
        """Metric attributes: image, instance_type, instance_cpus."""
        ...

    async def warm_up(self, script: str, timeout_seconds: float) -> None:
        """Run the standby's warm-up script; a timeout is no failure."""
        ...


class VmFactory(Protocol):
    """Creates the VMs of one tool (``tart`` or ``vetu``)."""

    @property
    def tool(self) -> str:
        """``tart`` or ``vetu``."""
        ...

    async def create(
        self,
        task_id: str,
        isolation: Isolation,
        *,
        run_args: Sequence[str] = (),
        ident: str | None = None,
        lazy_pull: bool = False,
        cli_env: Mapping[str, str] | None = None,
    ) -> WarmableInstance:
        """Boot a VM and connect to it; ``InstanceError`` if it cannot."""
        ...

    async def cleanup_orphans(self) -> list[str]:
        """Delete the VMs that dead workers left behind; return their names."""
        ...

    async def pull(self, image: str, cli_env: Mapping[str, str] | None = None) -> None:
        """Pull ``image`` ahead of use; ``InstanceError`` on failure."""
        ...


class Stoppable(Protocol):
    """What a worker's signal handling drives (``app.worker.signals``' ladder)."""

    def drain(self) -> None:
        """Accept no new task; finish and report the running ones."""
        ...

    def cancel_all(self) -> None:
        """Cancel the running tasks."""
        ...
