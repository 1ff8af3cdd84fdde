"""A task's caches: restored by cache instructions, uploaded by ``Upload '<name>' cache`` commands.

The flow and the log lines are the Cirrus agent's (``internal/agent/executor/cache.go``): a key
from the fingerprint, a hit unpacks the archive into the folder and skips ``populate_script``,
a miss runs it; the upload is skipped after a hit (unless ``reupload_on_changes`` and the content
changed), for empty folders, and when another task uploaded the key meanwhile. Archives are made
and unpacked on the worker host: directly in the instance's folder when the worker reaches it
(host, a container's working directory), else in a per-task workspace, copied in or out.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import posixpath
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from app.worker.log_stream import CommandLog
from app.worker.running_task import RunningTask
from app.worker.task_env import TaskEnvironment
from domain.errors import DefiniteControllerError
from domain.ports import ControllerClient, Instance, OutputSink
from domain.protocol import CacheInfo, CacheInstruction, CommandStatus, UploadUrl
from domain.script_launch import WORKING_DIR_VARIABLE
from domain.worker_caches import (
    CacheFolderError,
    CacheLayout,
    RestoredCache,
    cache_key,
    cache_layout,
    instruction_folders,
    upload_skip_reason,
)
from domain.worker_tools import (
    BlobMissingError,
    BlobTransferError,
    CacheArchiveError,
    CacheArchives,
    WorkerTools,
)

T = TypeVar("T")

# Runs a script's lines in the instance with the command's environment; returns its status.
ScriptRunner = Callable[[Sequence[str], OutputSink], Awaitable[int]]


class _Fingerprint:
    """An output sink that logs the fingerprint script's output and keeps its digest."""

    def __init__(self, output: CommandLog) -> None:
        self._output = output
        self.digest = hashlib.sha256()

    async def write(self, data: bytes) -> None:
        self.digest.update(data)
        await self._output.write(data)


def _size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size // 1024}Kb"
    return f"{size // 1024 // 1024}Mb"


def _present(archives: CacheArchives, base: str, members: Sequence[str]) -> tuple[list[str], bool]:
    """The members that exist under ``base``, and whether all of them are empty."""
    present = [m for m in members if os.path.lexists(os.path.join(base, m))]
    return present, all(archives.folder_is_empty(os.path.join(base, m)) for m in members)


class TaskCaches:
    """The caches of one task, by name."""

    def __init__(
        self,
        *,
        running: RunningTask,
        instance: Instance,
        env: TaskEnvironment,
        run_scripts: ScriptRunner,
        tools: WorkerTools,
    ) -> None:
        self._running = running
        self._instance = instance
        self._env = env
        self._run_scripts = run_scripts
        self._archives = tools.archives
        self._workspace = tools.workspace
        self._transfer = tools.blobs(running.upstream.client.endpoint)
        self._restored: dict[str, RestoredCache] = {}

    async def _call(self, what: str, fn: Callable[[ControllerClient], Awaitable[T]]) -> T:
        return await self._running.upstream.call(f"{what} {self._running.task_id}", fn)

    async def _info(self, key: str, prefixes: Sequence[str] = ()) -> CacheInfo | None:
        ref = self._running.ref
        return await self._call("CacheInfo", lambda c: c.cache_info(ref, key, prefixes))

    # --- the cache instruction --------------------------------------------------------------

    async def restore(
        self, name: str, instruction: CacheInstruction, output: CommandLog
    ) -> CommandStatus:
        """Compute the key, restore the cache or populate the folder; remember the cache."""
        env = await self._env.for_command()
        if instruction.fingerprint_key or not instruction.fingerprint_scripts:
            key = cache_key(name, instruction, env)
        else:
            sink = _Fingerprint(output)
            if await self._run_scripts(instruction.fingerprint_scripts, sink) != 0:
                await output.line(f"Failed to execute fingerprint script for {name} cache!")
                return CommandStatus.FAILED
            key = f"{name}-{sink.digest.hexdigest()}"
        folders = [await self._env.expand_for_command(f) for f in instruction_folders(instruction)]
        if any("*" in folder for folder in folders):
            await output.line(f"Globs in cache folders are not supported by this worker: {name}")
            return CommandStatus.FAILED
        try:
            layout = cache_layout(tuple(folders), env[WORKING_DIR_VARIABLE])
        except CacheFolderError as error:
            await output.line(f"{error}")
            return CommandStatus.FAILED
        keep_digest = instruction.reupload_on_changes
        populated, digest = await self._restore_or_miss(name, key, layout, keep_digest, output)
        hit = populated
        if not populated and instruction.optimistically_restore_on_miss:
            await output.line("Wasn't able to find the exact cache! Requesting the last one...")
            try:
                latest = await self._info("", (f"{name}-",))
            except DefiniteControllerError as error:
                await output.line(f"Failed to find latest available cache for {name}: {error}")
                latest = None
            if latest is None:
                await output.line(f"There is no other cache entry available for {name}")
            else:
                await output.line(
                    f"Found cache entry {latest.key} created by task {latest.created_by_task_id}!"
                )
                # Restored from another key: this key is still missing, so it gets uploaded.
                populated, _ = await self._restore_or_miss(name, latest.key, layout, False, output)
        if not populated and instruction.populate_scripts:
            await output.line(f"Cache miss for {key}! Populating...")
            if await self._run_scripts(instruction.populate_scripts, output) != 0:
                await output.line(f"Failed to execute populate script for {name} cache!")
                return CommandStatus.FAILED
        elif not populated:
            await output.line(f"Cache miss for {key}! No script to populate with.")
        self._restored[name] = RestoredCache(
            name=name,
            key=key,
            layout=layout,
            hit=hit,
            reupload_on_changes=instruction.reupload_on_changes,
            digest=digest if hit and keep_digest else None,
        )
        return CommandStatus.COMPLETED

    async def _restore_or_miss(
        self, name: str, key: str, layout: CacheLayout, keep_digest: bool, output: CommandLog
    ) -> tuple[bool, str | None]:
        """``_try_restore``; a controller refusing the cache calls makes a miss, as the agent
        treated any failed fetch."""
        try:
            return await self._try_restore(name, key, layout, keep_digest, output)
        except DefiniteControllerError as error:
            await output.line(f"Failed to fetch archive for {name} cache: {error}!")
            return False, None

    async def _try_restore(
        self, name: str, key: str, layout: CacheLayout, keep_digest: bool, output: CommandLog
    ) -> tuple[bool, str | None]:
        """Download and unpack the cache of ``key``: ``(restored, content digest)``."""
        if await self._info(key) is None:
            return False, None
        ref = self._running.ref
        try:
            urls = await self._call(
                "GenerateCacheDownloadURLs", lambda c: c.cache_download_urls(ref, key)
            )
        except DefiniteControllerError as error:
            if error.code != "not_found":
                raise
            return False, None
        if not urls:
            return False, None
        async with self._workspace(self._running.task_id) as workspace:
            archive = os.path.join(workspace, "cache.tar.zst")
            try:
                size = await self._transfer.download(urls[0], archive)
            except BlobMissingError:
                return False, None
            except BlobTransferError as error:
                await output.line(f"Failed to fetch archive for {name} cache: {error}!")
                return False, None
            await output.line(f"Downloaded {_size_text(size)}.")
            await output.line(f"Cache hit for {key}!")
            direct = self._instance.host_path(layout.base)
            target = direct if direct is not None else os.path.join(workspace, "restore")
            try:
                await asyncio.to_thread(self._archives.read_archive, archive, target)
            except CacheArchiveError as error:
                await output.line(f"Failed to unarchive {name} cache because of {error}!")
                return False, None
            await asyncio.to_thread(os.remove, archive)
            digest = None
            if keep_digest:
                digest = await asyncio.to_thread(self._archives.tree_digest, target, layout.members)
            if direct is None:
                await self._instance.copy_in(target, layout.base)
        return True, digest

    # --- the upload command -----------------------------------------------------------------

    async def upload(self, name: str, output: CommandLog) -> CommandStatus:
        """Upload cache ``name`` unless the agent's rules skip it."""
        cache = self._restored.get(name)
        if cache is None:
            await output.line(f"No cache found for {name}!")
            return CommandStatus.FAILED
        if cache.hit and not cache.reupload_on_changes:
            await output.line(f"Skipping change detection for {name} cache!")
            return CommandStatus.COMPLETED
        async with self._workspace(self._running.task_id) as workspace:
            base = await self._local_copy(cache.layout, Path(workspace, "folders"))
            members, empty = await asyncio.to_thread(
                _present, self._archives, base, cache.layout.members
            )
            digest = None
            if cache.digest is not None and not empty:
                digest = await asyncio.to_thread(self._archives.tree_digest, base, members)
            reason = upload_skip_reason(cache, empty, digest)
            if reason is not None:
                await output.line(reason)
                return CommandStatus.COMPLETED
            if cache.digest is not None:
                await output.line(f"Cache {name} has changed!")
            if not cache.hit and await self._uploaded_meanwhile(cache.key):
                await output.line(
                    f"Some other task has already uploaded cache entry {cache.key}! "
                    "Skipping upload..."
                )
                return CommandStatus.COMPLETED
            archive = os.path.join(workspace, "cache.tar.zst")
            try:
                size = await asyncio.to_thread(self._archives.write_archive, base, members, archive)
            except CacheArchiveError as error:
                await output.line(f"Failed to tar caches for {name} with {error}!")
                return CommandStatus.FAILED
            await output.line(f"{name} cache size is {_size_text(size)}.")
            try:
                await self._put(cache.key, archive, name, output)
            except (BlobTransferError, DefiniteControllerError) as error:
                # As the agent: a cache that could not be stored does not fail the task.
                await output.line(f"Failed to upload cache '{name}': {error}!")
                await output.line("Ignoring the error...")
        return CommandStatus.COMPLETED

    async def _uploaded_meanwhile(self, key: str) -> bool:
        """Whether another task stored ``key`` since the restore (unknown: no)."""
        try:
            return await self._info(key) is not None
        except DefiniteControllerError:
            return False

    async def _local_copy(self, layout: CacheLayout, scratch: Path) -> str:
        """A host directory holding the cache's members: the instance's own, or a copy."""
        direct = self._instance.host_path(layout.base)
        if direct is not None:
            return direct
        for member in layout.members:
            source = posixpath.normpath(posixpath.join(layout.base, member))
            await self._instance.copy_out(source, str(scratch / member))
        return str(scratch)

    async def _put(self, key: str, archive: str, name: str, output: CommandLog) -> None:
        ref = self._running.ref
        url: UploadUrl = await self._call(
            "GenerateCacheUploadURL", lambda c: c.cache_upload_url(ref, key)
        )
        await output.line(f"Uploading cache {name}...")
        await self._transfer.upload(url.url, archive, url.headers)
