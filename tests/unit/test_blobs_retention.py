"""Blob retention: expired artifacts and caches and orphaned uploads go; running tasks' stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import pytest

from app.controller.retention import BlobRetention
from domain.blobs import BlobInfo, BlobUrl
from domain.build import TaskStatus
from domain.errors import ConfigError
from domain.retention import (
    DAY,
    EXPIRED_ARTIFACT,
    EXPIRED_CACHE,
    HOUR,
    ORPHAN,
    RetentionSettings,
    parse_retention,
    verdict,
)

NOW = 100 * DAY


class FakeBlobs:
    """Blob infos in a dict; content is not needed here."""

    def __init__(self, *infos: BlobInfo) -> None:
        self.infos = {info.key: info for info in infos}

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, sha256: str | None = None
    ) -> BlobInfo:
        raise NotImplementedError

    def get(self, key: str) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def stat(self, key: str) -> BlobInfo | None:
        return self.infos.get(key)

    async def delete(self, key: str) -> bool:
        return self.infos.pop(key, None) is not None

    async def list(self, prefix: str) -> AsyncIterator[BlobInfo]:
        for key in sorted(self.infos):
            if key.startswith(prefix):
                yield self.infos[key]

    async def upload_url(self, key: str, expires_in: float) -> BlobUrl:
        return BlobUrl("/blobs/" + key)

    async def download_url(self, key: str, expires_in: float) -> BlobUrl:
        return BlobUrl("/blobs/" + key)


@dataclass
class FakeTask:
    status: TaskStatus


class FakeTasks:
    def __init__(self, statuses: dict[str, TaskStatus]) -> None:
        self.statuses = statuses

    async def get_task(self, task_id: str) -> FakeTask | None:
        status = self.statuses.get(task_id)
        return FakeTask(status) if status is not None else None


class FakeCommitted:
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.asked: list[str] = []

    async def is_committed(self, key: str) -> bool:
        self.asked.append(key)
        return key in self.keys


class FakeMetrics:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def blobs_deleted(self, reason: str, count: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + count


class FixedClock:
    def now(self) -> float:
        return NOW

    def monotonic(self) -> float:
        return 0.0


def blob(key: str, age: float) -> BlobInfo:
    return BlobInfo(key, 1, "0" * 64, NOW - age)


def test_a_cache_goes_after_caches_days_and_an_artifact_after_artifacts_days() -> None:
    settings = RetentionSettings(artifacts_days=30, caches_days=7)
    assert verdict(blob("caches/o/r/k", 8 * DAY), NOW, settings, committed=None) == EXPIRED_CACHE
    assert verdict(blob("caches/o/r/k", 6 * DAY), NOW, settings, committed=None) is None
    assert verdict(blob("artifacts/1/a/x", 31 * DAY), NOW, settings, committed=True) == (
        EXPIRED_ARTIFACT
    )
    assert verdict(blob("artifacts/1/a/x", 29 * DAY), NOW, settings, committed=True) is None


def test_an_uncommitted_artifact_is_an_orphan_only_after_the_grace_period() -> None:
    settings = RetentionSettings()
    assert verdict(blob("artifacts/1/a/x", 2 * HOUR), NOW, settings, committed=False) == ORPHAN
    assert verdict(blob("artifacts/1/a/x", 0.5 * HOUR), NOW, settings, committed=False) is None
    assert verdict(blob("artifacts/1/a/x", 2 * HOUR), NOW, settings, committed=None) is None


def test_blobs_outside_caches_and_artifacts_are_never_touched() -> None:
    assert verdict(blob("other/x", 1000 * DAY), NOW, RetentionSettings(), committed=False) is None


def test_a_pass_deletes_what_is_due_counts_it_and_spares_running_tasks() -> None:
    blobs = FakeBlobs(
        blob("caches/o/r/old", 8 * DAY),
        blob("caches/o/r/new", 1 * DAY),
        blob("artifacts/done/a/old", 31 * DAY),
        blob("artifacts/done/a/committed", 2 * HOUR),
        blob("artifacts/done/a/orphan", 2 * HOUR),
        blob("artifacts/running/a/orphan", 2 * HOUR),
        blob("artifacts/running/a/old", 40 * DAY),
        blob("artifacts/gone/a/orphan", 2 * HOUR),
    )
    tasks = FakeTasks({"done": TaskStatus.FAILED, "running": TaskStatus.EXECUTING})
    committed = FakeCommitted({"artifacts/done/a/committed"})
    metrics = FakeMetrics()
    retention = BlobRetention(
        blobs, tasks, committed=committed, metrics=metrics, clock=FixedClock()
    )
    deleted = asyncio.run(retention.run_once())
    assert sorted(blobs.infos) == [
        "artifacts/done/a/committed",
        "artifacts/running/a/old",
        "artifacts/running/a/orphan",
        "caches/o/r/new",
    ]
    assert deleted == {EXPIRED_CACHE: 1, EXPIRED_ARTIFACT: 1, ORPHAN: 2}
    assert metrics.counts == dict(deleted)
    assert not any(key.startswith("artifacts/running/") for key in committed.asked)


def test_without_a_committed_artifacts_source_no_orphan_is_deleted() -> None:
    blobs = FakeBlobs(blob("artifacts/done/a/x", 5 * HOUR))
    retention = BlobRetention(blobs, FakeTasks({}), clock=FixedClock())
    assert asyncio.run(retention.run_once()) == {}
    assert list(blobs.infos) == ["artifacts/done/a/x"]


def test_retention_settings_are_read_from_the_file_section() -> None:
    assert parse_retention(None) == RetentionSettings()
    assert parse_retention({"artifacts-days": 90, "caches-days": 1.5}) == RetentionSettings(
        artifacts_days=90, caches_days=1.5
    )


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"artifact-days": 3}, "retention.artifact-days"),
        ({"caches-days": 0}, "retention.caches-days"),
        ({"caches-days": "a week"}, "retention.caches-days"),
        ({"orphans-hours": True}, "retention.orphans-hours"),
        ("30", "retention"),
    ],
)
def test_a_bad_retention_value_names_its_key(section: object, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_retention(section)
    assert raised.value.key == key
