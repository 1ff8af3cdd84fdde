"""Blob retention: the controller's background job that deletes old and orphaned blobs.

Controller file key ``retention:`` with ``artifacts-days`` (default 30), ``caches-days``
(default 7), ``orphans-hours`` (default 1) and ``every-minutes`` (default 60). Each pass lists
the blob store and, blob by blob, decides (``verdict``, pure) and then deletes:

* an artifact (``artifacts/<task id>/...``) older than ``artifacts-days``;
* an artifact never committed (``CommitUploadedArtifacts``) after ``orphans-hours``: a worker
  killed halfway through an upload leaves one (asked through ``CommittedArtifacts``; without
  it no orphan is deleted);
* a cache (``caches/...``) older than ``caches-days``;
* but never an artifact of a task that is still running.

A store that keeps uploads in progress aside (the filesystem's ``tmp/``) has those abandoned
for ``orphans-hours`` removed too. Deletions are logged and counted by reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from app.worker.clock import SystemClock
from domain.blobs import ARTIFACTS_PREFIX, CACHES_PREFIX, BlobInfo, BlobStore, artifact_task_id
from domain.errors import CirrusError
from domain.ports import Clock
from domain.retention import (
    HOUR,
    PARTIAL_UPLOAD,
    CommittedArtifacts,
    PartialUploads,
    RetentionMetrics,
    RetentionSettings,
    TaskLookup,
    verdict,
)

log = logging.getLogger("cirrus.controller")


class BlobRetention:
    """Runs retention passes over one blob store."""

    def __init__(
        self,
        blobs: BlobStore,
        tasks: TaskLookup,
        settings: RetentionSettings | None = None,
        *,
        committed: CommittedArtifacts | None = None,
        metrics: RetentionMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._blobs = blobs
        self._tasks = tasks
        self.settings = settings or RetentionSettings()
        self._committed = committed
        self._metrics = metrics
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def _running(self, task_id: str, cache: dict[str, bool]) -> bool:
        if task_id not in cache:
            task = await self._tasks.get_task(task_id)
            cache[task_id] = task is not None and not task.status.is_final
        return cache[task_id]

    async def _committed_state(self, info: BlobInfo, now: float) -> bool | None:
        # Only asked when the answer matters: an artifact old enough to be an orphan.
        if self._committed is None or now - info.created_at <= self.settings.orphans_hours * HOUR:
            return None
        return await self._committed.is_committed(info.key)

    async def run_once(self) -> Counter[str]:
        """One pass: delete what is due; return the deletions by reason."""
        now = self._clock.now()
        deleted: Counter[str] = Counter()
        running: dict[str, bool] = {}
        for prefix in (ARTIFACTS_PREFIX, CACHES_PREFIX):
            due: list[tuple[str, str]] = []
            async for info in self._blobs.list(prefix):
                task_id = artifact_task_id(info.key)
                if task_id is not None and await self._running(task_id, running):
                    continue
                reason = verdict(
                    info, now, self.settings, committed=await self._committed_state(info, now)
                )
                if reason is not None:
                    due.append((info.key, reason))
            # Deleted after the listing, which a deletion under it could disturb.
            for key, reason in due:
                if await self._blobs.delete(key):
                    log.info("retention deleted blob %s (%s)", key, reason.replace("_", " "))
                    deleted[reason] += 1
        if isinstance(self._blobs, PartialUploads):
            partial = await self._blobs.collect_partial_uploads(self.settings.orphans_hours * HOUR)
            if partial:
                log.info("retention removed %d abandoned partial uploads", partial)
                deleted[PARTIAL_UPLOAD] += partial
        if self._metrics is not None:
            for reason, count in deleted.items():
                self._metrics.blobs_deleted(reason, count)
        return deleted

    async def run(self) -> None:
        """Run a pass every ``every-minutes`` until cancelled; a failed pass is logged."""
        while True:
            try:
                await self.run_once()
            except (CirrusError, OSError) as error:
                log.warning("blob retention pass failed: %s", error)
            await asyncio.sleep(self.settings.every_minutes * 60)
