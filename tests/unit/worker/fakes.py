"""Hand-written fakes of the worker's ports: a scripted controller, instances, a clock."""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from domain.errors import ControllerError, InstanceError, TransientControllerError
from domain.modifiers import ResourceModifier
from domain.ports import BackgroundProcess, Instance, OutputSink
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


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.mono = 100.0

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Sleeps:
    """An instant ``sleep`` that records every requested delay and yields once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class ManualTimers:
    """A ``sleep`` whose waits end only when the test fires them."""

    def __init__(self) -> None:
        self.requested: list[float] = []
        self._fire = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        await self._fire.wait()

    def fire(self) -> None:
        self._fire.set()


async def eventually(condition: object, what: str = "condition", deadline: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` is true, failing after ``deadline`` seconds."""
    assert callable(condition)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


@dataclass
class FakeController:
    """A controller that records every call; polls answer from a queue (empty = held open)."""

    endpoint: str = "http://controller.test"
    commands: dict[str, CommandsResponse] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    polls: list[PollRequest] = field(default_factory=list)
    failures: dict[str, list[ControllerError]] = field(default_factory=dict)
    down: bool = False
    registrations: int = 0
    disabled: bool = False
    running: tuple[str, ...] = ()
    closed: bool = False
    # The controller becomes unreachable right after answering this method.
    go_down_after: str = ""

    def __post_init__(self) -> None:
        self.responses: asyncio.Queue[PollResponse] = asyncio.Queue()
        self.log_chunks: list[tuple[str, str, bytes]] = []
        self.log_offsets: list[tuple[str, int | None]] = []

    def answer(self, response: PollResponse) -> None:
        self.responses.put_nowait(response)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _enter(self, method: str) -> None:
        if self.down:
            raise TransientControllerError("unavailable", "controller down")
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

    async def register(self, worker_info: WorkerInfo) -> str:
        self._enter("register")
        self.registrations += 1
        self.calls.append(("register", worker_info))
        return f"session-{self.registrations}"

    async def poll(self, request: PollRequest, timeout_seconds: float) -> PollResponse:
        self._enter("poll")
        self.polls.append(request)
        return await self.responses.get()

    async def task_started(self, task: TaskRef) -> None:
        self._enter("task_started")
        self.calls.append(("task_started", task.task_id))

    async def task_failed(self, task: TaskRef, message: str) -> None:
        self._enter("task_failed")
        self.calls.append(("task_failed", (task.task_id, message)))

    async def task_stopped(self, task: TaskRef) -> None:
        self._enter("task_stopped")
        self.calls.append(("task_stopped", task.task_id))

    async def update_status(self, disabled: bool) -> bool:
        self._enter("update_status")
        self.calls.append(("update_status", disabled))
        self.disabled = disabled
        return disabled

    async def query_running_tasks(self) -> RunningTasksStatus:
        self._enter("query_running_tasks")
        self.calls.append(("query_running_tasks", None))
        status = RunningTasksStatus(disabled=self.disabled, running_tasks=self.running)
        self.running = ()
        return status

    async def initial_commands(self, task: TaskRef, local_timestamp: int) -> CommandsResponse:
        self._enter("initial_commands")
        self.calls.append(("initial_commands", task.task_id))
        if self.go_down_after == "initial_commands":
            self.down = True
        return self.commands.get(task.task_id, CommandsResponse())

    async def report_command_updates(self, task: TaskRef, updates: Sequence[CommandResult]) -> None:
        self._enter("report_command_updates")
        for update in updates:
            self.calls.append(("update", (task.task_id, update.name, update.status.name)))

    async def append_logs(
        self, task: TaskRef, command_name: str, data: bytes, offset: int | None = None
    ) -> int:
        self.log_offsets.append((command_name, offset))  # every attempt, failed ones too
        self._enter("append_logs")
        self.calls.append(("logs", (task.task_id, command_name, len(data))))
        self.log_chunks.append((task.task_id, command_name, data))
        return len(data)

    async def heartbeat(self, task: TaskRef) -> None:
        self._enter("heartbeat")

    async def report_agent_finished(self, task: TaskRef, results: Sequence[CommandResult]) -> None:
        self._enter("report_agent_finished")
        self.calls.append(("finished", tuple((r.name, r.status.name) for r in results)))

    async def cache_info(
        self, task: TaskRef, cache_key: str, prefixes: Sequence[str] = ()
    ) -> CacheInfo | None:
        self._enter("cache_info")
        self.calls.append(("cache_info", (cache_key, tuple(prefixes))))
        return None  # no caches: a cache instruction of this fake always misses

    async def cache_download_urls(self, task: TaskRef, cache_key: str) -> tuple[str, ...]:
        self._enter("cache_download_urls")
        return ()

    async def cache_upload_url(self, task: TaskRef, cache_key: str) -> UploadUrl:
        self._enter("cache_upload_url")
        self.calls.append(("cache_upload_url", cache_key))
        return UploadUrl(url=f"/blobs/caches/{cache_key}")

    async def artifact_upload_urls(
        self, task: TaskRef, name: str, files: Sequence[ArtifactFileInfo]
    ) -> tuple[UploadUrl, ...]:
        self._enter("artifact_upload_urls")
        self.calls.append(("artifact_upload_urls", (name, tuple(files))))
        return tuple(UploadUrl(url=f"/blobs/artifacts/{name}/{f.path}") for f in files)

    async def commit_artifacts(self, task: TaskRef, commit: ArtifactsCommit) -> None:
        self._enter("commit_artifacts")
        self.calls.append(("commit_artifacts", commit))

    async def aclose(self) -> None:
        self.closed = True

    def logs(self, task_id: str, command: str) -> bytes:
        return b"".join(
            chunk for tid, cmd, chunk in self.log_chunks if tid == task_id and cmd == command
        )


class FakeBackground:
    """A background script handle."""

    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


class FakeInstance:
    """Runs scripts by their text: ``fail`` exits 1, ``block`` waits until cancelled,
    ``print:TEXT`` writes TEXT, ``cirrus-env:TEXT`` appends TEXT to ``$CIRRUS_ENV``; anything
    else exits 0. Its probed environment adds ``HOME=/home/<task id>`` to the base."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.scripts: list[tuple[str, dict[str, str]]] = []
        self.files: dict[str, bytes] = {}
        self.copied: list[tuple[str, str]] = []
        self.background: list[FakeBackground] = []
        self.closed = False
        self.interrupted: list[str] = []
        self.blocking = asyncio.Event()
        self.env_files: dict[str, str] = {}
        self.probes = 0

    @property
    def working_directory(self) -> str:
        return f"/work/{self.task_id}"

    def base_environment(self) -> Mapping[str, str]:
        return {"PATH": "/bin", "CI": "false"}

    async def probe_environment(self) -> Mapping[str, str]:
        self.probes += 1
        return {**self.base_environment(), "HOME": f"/home/{self.task_id}"}

    async def create_env_file(self) -> str:
        path = f"/tmp/env-{len(self.env_files)}"
        self.env_files[path] = ""
        return path

    async def take_env_file(self, path: str) -> str:
        return self.env_files.pop(path)

    async def run_script(self, script: str, env: Mapping[str, str], output: OutputSink) -> int:
        self.scripts.append((script, dict(env)))
        if script.startswith("cirrus-env:"):
            self.env_files[env["CIRRUS_ENV"]] += script.removeprefix("cirrus-env:")
        if script == "fail":
            return 1
        if script == "block":
            self.blocking.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.interrupted.append(script)
                raise
        if script.startswith("print:"):
            await output.write(script.removeprefix("print:").encode())
        return 0

    async def start_background(
        self, script: str, env: Mapping[str, str], output: OutputSink
    ) -> BackgroundProcess:
        process = FakeBackground()
        self.background.append(process)
        await output.write(b"bg started\n")
        return process

    async def write_file(self, path: str, contents: bytes) -> None:
        self.files[path] = contents

    async def copy_in(self, local_dir: str, remote_dir: str) -> None:
        self.copied.append((local_dir, remote_dir))

    def host_path(self, remote_path: str) -> str | None:
        return None  # like a VM: files reach the worker only through copy_out

    def _absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.working_directory, path))

    async def list_files(self, root: str) -> tuple[str, ...]:
        prefix = self._absolute(root) + "/"
        return tuple(
            sorted(
                self._absolute(p)[len(prefix) :]
                for p in self.files
                if self._absolute(p).startswith(prefix)
            )
        )

    async def copy_out(self, remote_path: str, local_path: str) -> bool:
        wanted = self._absolute(remote_path)
        found = {p: c for p, c in self.files.items() if self._absolute(p) == wanted}
        for contents in found.values():
            await asyncio.to_thread(_write, Path(local_path), contents)
        return bool(found)

    async def close(self) -> None:
        self.closed = True


def _write(target: Path, contents: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(contents)


class FakeInstances:
    """An ``InstanceProvider`` creating ``FakeInstance``s, or failing with ``error``."""

    def __init__(self, error: str | None = None) -> None:
        self.created: dict[str, FakeInstance] = {}
        self.cli_envs: dict[str, dict[str, str]] = {}
        self.modifiers: dict[str, ResourceModifier | None] = {}
        self.error = error

    async def create(
        self,
        task: AgentAwareTask,
        modifier: ResourceModifier | None,
        cli_env: Mapping[str, str] | None = None,
    ) -> Instance:
        self.cli_envs[task.task_id] = dict(cli_env or {})
        self.modifiers[task.task_id] = modifier
        if self.error is not None:
            raise InstanceError(self.error)
        instance = FakeInstance(task.task_id)
        self.created[task.task_id] = instance
        return instance
