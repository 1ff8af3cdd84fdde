"""A task's artifacts instruction: match the paths, upload each file, commit the artifact.

As the Cirrus agent (``internal/agent/executor/artifacts.go``): every pattern logs how many
files it matched, a pattern matching nothing is a warning and not a failure, a path outside the
working directory fails the command. Files are matched in the instance: a literal path is
copied out (or read in place) directly; a glob lists the files under its fixed directory part
(``Instance.list_files``: a walk on the host or a container's bind-mounted working directory,
SFTP in a VM; nothing needed in the image) and matches them with ``domain.artifact_paths``.
Then ``GenerateArtifactUploadURLs``, one streaming PUT per file, ``CommitUploadedArtifacts``.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from app.worker.log_stream import CommandLog
from app.worker.running_task import RunningTask
from app.worker.task_env import TaskEnvironment
from domain.artifact_paths import (
    PathOutsideWorkingDir,
    has_glob,
    match_files,
    relative_pattern,
    static_root,
)
from domain.ports import ControllerClient, Instance
from domain.protocol import ArtifactFileInfo, ArtifactsCommit, ArtifactsInstruction, CommandStatus
from domain.script_launch import WORKING_DIR_VARIABLE
from domain.worker_tools import BlobTransferError, WorkerTools

T = TypeVar("T")
HEFTY = 100 * 1000 * 1000  # the agent's "quite hefty artifact" size


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


class TaskArtifacts:
    """Uploads the artifacts of one task's commands."""

    def __init__(
        self,
        *,
        running: RunningTask,
        instance: Instance,
        env: TaskEnvironment,
        tools: WorkerTools,
    ) -> None:
        self._running = running
        self._instance = instance
        self._env = env
        self._workspace = tools.workspace
        self._transfer = tools.blobs(running.upstream.client.endpoint)

    async def _call(self, what: str, fn: Callable[[ControllerClient], Awaitable[T]]) -> T:
        return await self._running.upstream.call(f"{what} {self._running.task_id}", fn)

    async def upload(
        self, name: str, instruction: ArtifactsInstruction, output: CommandLog
    ) -> CommandStatus:
        """Upload and commit the files of artifact ``name``."""
        if not instruction.paths:
            await output.line("Skipping artifacts upload because there are no paths specified...")
            return CommandStatus.COMPLETED
        env = await self._env.for_command()
        working = env[WORKING_DIR_VARIABLE]
        async with self._workspace(self._running.task_id) as workspace:
            files: dict[str, str] = {}  # path relative to the working directory -> host path
            for raw in instruction.paths:
                pattern = await self._env.expand_for_command(raw)
                try:
                    relative = relative_pattern(pattern, working)
                except PathOutsideWorkingDir as error:
                    await output.line(f"Failed to upload artifacts: {error}")
                    return CommandStatus.FAILED
                found = await self._match(relative, working, Path(workspace, "files"))
                await output.line(f"Uploading {len(found)} artifacts for {pattern}")
                if not found:
                    await output.line(
                        f"Warning: no file matches {pattern!r} in {working}; nothing to upload."
                    )
                for path, host in found.items():
                    files.setdefault(path, host)
            if files:
                return await self._send(name, instruction, files, output)
        return CommandStatus.COMPLETED

    async def _match(self, relative: str, working: str, scratch: Path) -> dict[str, str]:
        """The files ``relative`` names: ``{relative path: where the worker reads it}``."""
        if not has_glob(relative):
            return await self._literal(relative, working, scratch)
        root = static_root(relative)
        listed = await self._instance.list_files(posixpath.join(working, root))
        candidates = [posixpath.normpath(posixpath.join(root, f)) for f in listed]
        found: dict[str, str] = {}
        for path in match_files(relative, candidates):
            host = await self._reach(posixpath.join(working, path), scratch / path)
            if host is not None:
                found[path] = host
        return found

    async def _literal(self, relative: str, working: str, scratch: Path) -> dict[str, str]:
        host = await self._reach(posixpath.join(working, relative), scratch / relative)
        return {relative: host} if host is not None else {}

    async def _reach(self, remote: str, local: Path) -> str | None:
        """A host path holding the instance's file ``remote``: in place, or copied out."""
        direct = self._instance.host_path(remote)
        if direct is None:
            copied = await asyncio.to_thread(local.exists)
            if not copied and not await self._instance.copy_out(remote, str(local)):
                return None
            direct = str(local)
        return direct if await asyncio.to_thread(_is_file, direct) else None

    async def _send(
        self,
        name: str,
        instruction: ArtifactsInstruction,
        files: dict[str, str],
        output: CommandLog,
    ) -> CommandStatus:
        infos = tuple(
            [
                ArtifactFileInfo(path, await asyncio.to_thread(os.path.getsize, host))
                for path, host in sorted(files.items())
            ]
        )
        ref = self._running.ref
        urls = await self._call(
            "GenerateArtifactUploadURLs", lambda c: c.artifact_upload_urls(ref, name, infos)
        )
        for info, url in zip(infos, urls, strict=True):
            if info.size_in_bytes > HEFTY:
                await output.line(
                    f"Uploading a quite hefty artifact '{info.path}' of size "
                    f"{info.size_in_bytes / 1e6:.0f} MB"
                )
            try:
                await self._transfer.upload(url.url, files[info.path], url.headers)
            except BlobTransferError as error:
                await output.line(f"Failed to upload artifacts: {error}")
                return CommandStatus.FAILED
            await output.line(f"Uploaded {info.path}")
        commit = ArtifactsCommit(
            name=name, type=instruction.type, format=instruction.format, files=infos
        )
        await self._call("CommitUploadedArtifacts", lambda c: c.commit_artifacts(ref, commit))
        return CommandStatus.COMPLETED
