"""The artifact store (committed files, JUnit results, cache index): one contract, run on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from domain.artifacts import (
    ArtifactRecord,
    ArtifactStore,
    CacheEntry,
    HasArtifacts,
)
from domain.artifacts import TestFailure as Failure
from domain.artifacts import TestResults as Results
from domain.build import BuildSpec, TaskSpec
from domain.store import ControllerStore

pytestmark = pytest.mark.integration


def artifacts_of(store: ControllerStore) -> ArtifactStore:
    """The artifact store on a store's database."""
    assert isinstance(store, HasArtifacts)
    return store.artifacts()


async def new_task(store: ControllerStore) -> str:
    """A task id of a fresh build."""
    build = await store.create_build(BuildSpec(tasks=(TaskSpec(name="main"),)))
    return build.tasks[0].id


def record(task_id: str, path: str, size: int = 3, **changes: str) -> ArtifactRecord:
    """A committed file of artifact ``junit``."""
    values = {"type": "text/xml", "format": "junit", "sha256": "ab" * 32, **changes}
    return ArtifactRecord(
        task_id,
        "junit",
        path,
        size,
        values["sha256"],
        values["type"],
        values["format"],
        f"artifacts/{task_id}/junit/{path}",
        10.0,
    )


async def test_committed_files_list_by_name_and_path_and_a_recommit_replaces_one(
    store: ControllerStore,
) -> None:
    artifacts = artifacts_of(store)
    task = await new_task(store)
    await artifacts.commit_artifacts(task, [record(task, "b.xml"), record(task, "a.xml")], None)
    await artifacts.commit_artifacts(task, [record(task, "b.xml", 9, type="application/xml")], None)
    listed = await artifacts.list_artifacts(task)
    assert [(r.path, r.size, r.type) for r in listed] == [
        ("a.xml", 3, "text/xml"),
        ("b.xml", 9, "application/xml"),
    ]
    assert await artifacts.get_artifact(task, "junit", "a.xml") == listed[0]
    assert await artifacts.get_artifact(task, "junit", "c.xml") is None
    assert await artifacts.list_artifacts("no-such-task") == []


async def test_only_committed_blob_keys_count_as_committed(store: ControllerStore) -> None:
    artifacts = artifacts_of(store)
    task = await new_task(store)
    await artifacts.commit_artifacts(task, [record(task, "a.xml")], None)
    assert await artifacts.is_committed(f"artifacts/{task}/junit/a.xml")
    assert not await artifacts.is_committed(f"artifacts/{task}/junit/orphan.xml")


async def test_test_results_of_several_commits_add_up_and_are_absent_without_junit(
    store: ControllerStore,
) -> None:
    artifacts = artifacts_of(store)
    task, other = await new_task(store), await new_task(store)
    first = Results(2, 1, 0, (Failure("m.test_a", "boom"),))
    second = Results(3, 1, 4, (Failure("m.test_b", ""),), ("x.xml: unparseable",))
    await artifacts.commit_artifacts(task, [record(task, "1.xml")], first)
    await artifacts.commit_artifacts(task, [record(task, "2.xml")], second)
    assert await artifacts.test_results(task) == Results(
        5,
        2,
        4,
        (Failure("m.test_a", "boom"), Failure("m.test_b", "")),
        ("x.xml: unparseable",),
    )
    assert await artifacts.test_results(other) is None


async def test_concurrent_commits_of_one_task_merge_every_result(store: ControllerStore) -> None:
    artifacts = artifacts_of(store)
    task = await new_task(store)
    await asyncio.gather(
        *(
            artifacts.commit_artifacts(task, [record(task, f"{n}.xml")], Results(passed=1))
            for n in range(8)
        )
    )
    results = await artifacts.test_results(task)
    assert results is not None
    assert results.passed == 8


async def test_the_cache_index_keeps_the_latest_use_and_the_uploader_per_repository(
    store: ControllerStore,
) -> None:
    index = artifacts_of(store)
    await index.cache_seen(CacheEntry("octo/app/pull/7", "pip-1", 0, 5.0, 5.0, "42"))
    await index.cache_seen(CacheEntry("octo/app/pull/7", "pip-1", 100, 6.0, 6.0))
    await index.cache_seen(CacheEntry("octo/app", "pip-1", 50, 1.0, 1.0))
    await index.cache_seen(CacheEntry("octo/other", "pip-1", 70, 1.0, 1.0))
    await index.cache_used("octo/app", "pip-1", 30.0)
    await index.cache_used("octo/app", "pip-1", 20.0)  # an older use changes nothing
    await index.cache_seen(CacheEntry("octo/app", "pip-1", 60, 2.0, 2.0))
    caches = await index.repository_caches("octo/app")
    assert caches == [
        CacheEntry("octo/app", "pip-1", 60, 2.0, 30.0),
        CacheEntry("octo/app/pull/7", "pip-1", 100, 6.0, 6.0, "42"),
    ]
    await index.forget_cache("octo/app", "pip-1")
    assert [c.scope for c in await index.repository_caches("octo/app")] == ["octo/app/pull/7"]
