"""SQL and row conversions shared by the SQLite and PostgreSQL artifact stores.

Statements are templates: ``{p}`` is the driver's placeholder, ``{greatest}`` the two-argument
maximum (``MAX`` in SQLite, ``GREATEST`` in PostgreSQL) and ``{lock}`` a row lock clause
(empty in SQLite, whose write transactions are exclusive anyway).
"""

from __future__ import annotations

import json

from adapters.storage.stored_records import Row
from domain.artifacts import ArtifactRecord, CacheEntry, TestFailure, TestResults

ARTIFACT_COLUMNS = "task_id, name, path, size, sha256, type, format, blob_key, created_at"
UPSERT_ARTIFACT = f"""INSERT INTO artifacts ({ARTIFACT_COLUMNS})
    VALUES ({{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}})
    ON CONFLICT (task_id, name, path) DO UPDATE SET size = excluded.size,
        sha256 = excluded.sha256, type = excluded.type, format = excluded.format,
        blob_key = excluded.blob_key, created_at = excluded.created_at"""
SELECT_ARTIFACTS = (
    f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE task_id = {{p}} ORDER BY name, path"
)
SELECT_ARTIFACT = (
    f"SELECT {ARTIFACT_COLUMNS} FROM artifacts "
    "WHERE task_id = {p} AND name = {p} AND path = {p}"
)
SELECT_COMMITTED = "SELECT 1 FROM artifacts WHERE blob_key = {p}"

TEST_COLUMNS = "passed, failed, skipped, failures, notices"
INSERT_NO_TESTS = (
    "INSERT INTO task_tests (task_id, passed, failed, skipped) VALUES ({p}, 0, 0, 0) "
    "ON CONFLICT (task_id) DO NOTHING"
)
SELECT_TESTS = f"SELECT {TEST_COLUMNS} FROM task_tests WHERE task_id = {{p}}{{lock}}"
UPDATE_TESTS = (
    "UPDATE task_tests SET passed = {p}, failed = {p}, skipped = {p}, failures = {p}, "
    "notices = {p} WHERE task_id = {p}"
)

CACHE_COLUMNS = "scope, key, size, created_at, last_used_at, created_by_task_id"
UPSERT_CACHE = f"""INSERT INTO caches ({CACHE_COLUMNS}, repository)
    VALUES ({{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}})
    ON CONFLICT (scope, key) DO UPDATE SET size = excluded.size,
        created_at = excluded.created_at,
        last_used_at = {{greatest}}(caches.last_used_at, excluded.last_used_at),
        created_by_task_id = CASE WHEN excluded.created_by_task_id = ''
            THEN caches.created_by_task_id ELSE excluded.created_by_task_id END"""
TOUCH_CACHE = (
    "UPDATE caches SET last_used_at = {greatest}(last_used_at, {p}) WHERE scope = {p} AND key = {p}"
)
SELECT_REPOSITORY_CACHES = (
    f"SELECT {CACHE_COLUMNS} FROM caches WHERE repository = {{p}} ORDER BY scope, key"
)
DELETE_CACHE = "DELETE FROM caches WHERE scope = {p} AND key = {p}"


def artifact_parameters(task_key: int, record: ArtifactRecord) -> tuple[object, ...]:
    """The ``UPSERT_ARTIFACT`` parameters of one record."""
    return (
        task_key,
        record.name,
        record.path,
        record.size,
        record.sha256,
        record.type,
        record.format,
        record.blob_key,
        record.created_at,
    )


def artifact_from_row(row: Row) -> ArtifactRecord:
    """An ``ArtifactRecord`` from a row of ``ARTIFACT_COLUMNS``."""
    return ArtifactRecord(
        task_id=str(row["task_id"]),
        name=str(row["name"]),
        path=str(row["path"]),
        size=int(row["size"]),
        sha256=str(row["sha256"]),
        type=str(row["type"]),
        format=str(row["format"]),
        blob_key=str(row["blob_key"]),
        created_at=float(row["created_at"]),
    )


def tests_from_row(row: Row) -> TestResults:
    """``TestResults`` from a row of ``TEST_COLUMNS``."""
    failures = json.loads(str(row["failures"]))
    return TestResults(
        passed=int(row["passed"]),
        failed=int(row["failed"]),
        skipped=int(row["skipped"]),
        failures=tuple(TestFailure(str(f["name"]), str(f["message"])) for f in failures),
        notices=tuple(str(n) for n in json.loads(str(row["notices"]))),
    )


def tests_parameters(task_key: int, tests: TestResults) -> tuple[object, ...]:
    """The ``UPDATE_TESTS`` parameters of merged results."""
    failures = [{"name": f.name, "message": f.message} for f in tests.failures]
    return (
        tests.passed,
        tests.failed,
        tests.skipped,
        json.dumps(failures),
        json.dumps(list(tests.notices)),
        task_key,
    )


def cache_parameters(entry: CacheEntry) -> tuple[object, ...]:
    """The ``UPSERT_CACHE`` parameters of one entry."""
    return (
        entry.scope,
        entry.key,
        entry.size,
        entry.created_at,
        entry.last_used_at,
        entry.created_by_task_id,
        entry.repository,
    )


def cache_from_row(row: Row) -> CacheEntry:
    """A ``CacheEntry`` from a row of ``CACHE_COLUMNS``."""
    return CacheEntry(
        scope=str(row["scope"]),
        key=str(row["key"]),
        size=int(row["size"]),
        created_at=float(row["created_at"]),
        last_used_at=float(row["last_used_at"]),
        created_by_task_id=str(row["created_by_task_id"]),
    )
