"""A ``ControllerClient`` that times every call and counts failures by Twirp method and code."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from domain.errors import ControllerError
from domain.ports import ControllerClient
from domain.protocol import (
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
from domain.telemetry import Metrics

T = TypeVar("T")


def error_code(error: BaseException) -> str:
    """The Twirp code of a controller error; the exception's type name for anything else."""
    if isinstance(error, ControllerError):
        return error.code
    return type(error).__name__


class MeteredControllerClient:
    """Implements ``domain.ports.ControllerClient`` around another, reporting each call."""

    def __init__(
        self,
        inner: ControllerClient,
        metrics: Metrics,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._metrics = metrics
        self._monotonic = monotonic

    async def _timed(self, method: str, call: Awaitable[T]) -> T:
        started = self._monotonic()
        try:
            result = await call
        except Exception as error:
            self._metrics.controller_request(method, self._monotonic() - started, error_code(error))
            raise
        self._metrics.controller_request(method, self._monotonic() - started, None)
        return result

    @property
    def endpoint(self) -> str:
        """The controller's base URL."""
        return self.inner.endpoint

    async def register(self, worker_info: WorkerInfo) -> str:
        """``Register``, timed."""
        return await self._timed("Register", self.inner.register(worker_info))

    async def poll(self, request: PollRequest, timeout_seconds: float) -> PollResponse:
        """``Poll``, timed (a long poll counts its whole wait)."""
        return await self._timed("Poll", self.inner.poll(request, timeout_seconds))

    async def task_started(self, task: TaskRef) -> None:
        """``TaskStarted``, timed."""
        await self._timed("TaskStarted", self.inner.task_started(task))

    async def task_failed(self, task: TaskRef, message: str) -> None:
        """``TaskFailed``, timed."""
        await self._timed("TaskFailed", self.inner.task_failed(task, message))

    async def task_stopped(self, task: TaskRef) -> None:
        """``TaskStopped``, timed."""
        await self._timed("TaskStopped", self.inner.task_stopped(task))

    async def update_status(self, disabled: bool) -> bool:
        """``UpdateStatus``, timed."""
        return await self._timed("UpdateStatus", self.inner.update_status(disabled))

    async def query_running_tasks(self) -> RunningTasksStatus:
        """``QueryRunningTasks``, timed."""
        return await self._timed("QueryRunningTasks", self.inner.query_running_tasks())

    async def initial_commands(self, task: TaskRef, local_timestamp: int) -> CommandsResponse:
        """``InitialCommands``, timed."""
        return await self._timed(
            "InitialCommands", self.inner.initial_commands(task, local_timestamp)
        )

    async def report_command_updates(self, task: TaskRef, updates: Sequence[CommandResult]) -> None:
        """``ReportCommandUpdates``, timed."""
        await self._timed("ReportCommandUpdates", self.inner.report_command_updates(task, updates))

    async def append_logs(
        self, task: TaskRef, command_name: str, data: bytes, offset: int | None = None
    ) -> int:
        """``AppendLogs``, timed."""
        call = self.inner.append_logs(task, command_name, data, offset)
        return await self._timed("AppendLogs", call)

    async def heartbeat(self, task: TaskRef) -> None:
        """``Heartbeat``, timed."""
        await self._timed("Heartbeat", self.inner.heartbeat(task))

    async def report_agent_finished(self, task: TaskRef, results: Sequence[CommandResult]) -> None:
        """``ReportAgentFinished``, timed."""
        await self._timed("ReportAgentFinished", self.inner.report_agent_finished(task, results))

    async def cache_info(
        self, task: TaskRef, cache_key: str, prefixes: Sequence[str] = ()
    ) -> CacheInfo | None:
        """``CacheInfo``, timed."""
        return await self._timed("CacheInfo", self.inner.cache_info(task, cache_key, prefixes))

    async def cache_download_urls(self, task: TaskRef, cache_key: str) -> tuple[str, ...]:
        """``GenerateCacheDownloadURLs``, timed."""
        return await self._timed(
            "GenerateCacheDownloadURLs", self.inner.cache_download_urls(task, cache_key)
        )

    async def cache_upload_url(self, task: TaskRef, cache_key: str) -> UploadUrl:
        """``GenerateCacheUploadURL``, timed."""
        return await self._timed(
            "GenerateCacheUploadURL", self.inner.cache_upload_url(task, cache_key)
        )

    async def artifact_upload_urls(
        self, task: TaskRef, name: str, files: Sequence[ArtifactFileInfo]
    ) -> tuple[UploadUrl, ...]:
        """``GenerateArtifactUploadURLs``, timed."""
        return await self._timed(
            "GenerateArtifactUploadURLs", self.inner.artifact_upload_urls(task, name, files)
        )

    async def commit_artifacts(self, task: TaskRef, commit: ArtifactsCommit) -> None:
        """``CommitUploadedArtifacts``, timed."""
        await self._timed("CommitUploadedArtifacts", self.inner.commit_artifacts(task, commit))

    async def aclose(self) -> None:
        """Release the inner client's connections (not timed)."""
        await self.inner.aclose()
