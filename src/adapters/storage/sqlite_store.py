"""The controller's store on SQLite: implements ``domain.store.ControllerStore``.

One ``SqliteStore`` owns one connection on its own thread. Several stores (in one process or in
several) may open the same file: guards are enforced by the database, so a task is still
claimed once. ``sqlite:///:memory:`` works too, but only within one store.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Mapping, Sequence
from pathlib import Path

from adapters.storage import build_listing, sqlite_attempts, sqlite_logs, sqlite_tasks
from adapters.storage.check_in_rows import (
    CHECK_IN,
    check_in_of,
    check_in_parameters,
    check_in_read,
    reported_keys,
)
from adapters.storage.forge_tables import ForgeTables
from adapters.storage.log_chunks import check_log_range
from adapters.storage.policy_json import dumps_policy
from adapters.storage.schema_versions import Migration
from adapters.storage.spec_json import dumps_float_map, dumps_str_map
from adapters.storage.sqlite_artifacts import SqliteArtifacts
from adapters.storage.sqlite_connection import SqliteConnection
from adapters.storage.sqlite_forge import sqlite_forge_tables
from adapters.storage.sqlite_migrations import SQLITE_MIGRATIONS
from adapters.storage.sqlite_repositories import SqliteRepositories
from adapters.storage.sqlite_rows import load_task, load_tasks, load_workers
from adapters.storage.sqlite_snapshots import SqliteSnapshots
from adapters.storage.sqlite_task_calls import SqliteTaskCalls
from adapters.storage.sqlite_user_tokens import SqliteUserTokens
from adapters.storage.stored_records import (
    credentials_from_row,
    credentials_query,
    disabled_update,
    new_secret,
    row_key,
    worker_from_row,
)
from domain.build import BuildSpec, TaskStatus
from domain.log_quota import NO_QUOTA, AppendedLog, plan_log_write
from domain.policy import SecurityPolicy
from domain.ports import Clock
from domain.protocol import CommandResult
from domain.rerun import NewAttempt
from domain.snapshots import SnapshotInfo
from domain.source import BuildSource
from domain.store import (
    BuildRecord,
    NoSuchTaskError,
    QueueSummary,
    TaskCredentials,
    TaskRecord,
    WorkerCheckIn,
    WorkerRecord,
)

_QUEUED = "status = 'SCHEDULED' AND worker IS NULL"

WORKERS_PAGE_SIZE = 100
"""Workers ``list_workers`` reads per transaction (the connection serves others between)."""


def _workers_after(connection: sqlite3.Connection, after: str) -> list[WorkerRecord]:
    """Return the first ``WORKERS_PAGE_SIZE`` workers whose names sort after ``after``."""
    return load_workers(
        connection,
        "name IN (SELECT name FROM workers WHERE name > ? ORDER BY name LIMIT ?)",
        (after, WORKERS_PAGE_SIZE),
    )


class SqliteStore(SqliteTaskCalls):
    """``ControllerStore`` on a SQLite file; open it with ``SqliteStore.open``."""

    def __init__(
        self, connection: SqliteConnection, clock: Clock, secret_factory: Callable[[], str]
    ) -> None:
        self._db = connection
        self._clock = clock
        self._new_secret = secret_factory
        self._snapshots = SqliteSnapshots(connection, clock)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        clock: Clock,
        *,
        secret_factory: Callable[[], str] = new_secret,
        migrations: tuple[Migration, ...] = SQLITE_MIGRATIONS,
    ) -> SqliteStore:
        """Open (create and migrate if needed) the database file at ``path``, or ``:memory:``."""
        connection = await SqliteConnection.open(str(path), clock.now(), migrations)
        return cls(connection, clock, secret_factory)

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
        await self._db.aclose()

    def artifacts(self) -> SqliteArtifacts:
        """Return the artifacts, test results and cache index on this store's database."""
        return SqliteArtifacts(self._db)

    def forge(self) -> ForgeTables:
        """Return the forge tables (webhooks, statuses, approvals, crons) on this connection."""
        return sqlite_forge_tables(self._db, self._clock)

    def repositories(self) -> SqliteRepositories:
        """Return the registry of repositories on this store's connection."""
        return SqliteRepositories(self._db, self._clock)

    def user_tokens(self) -> SqliteUserTokens:
        """Return the user tokens on this store's connection."""
        return SqliteUserTokens(self._db, self._clock)

    # --- builds ---------------------------------------------------------------------------

    async def create_build(
        self, spec: BuildSpec, source: BuildSource | None = None, *, submitted_by: str = ""
    ) -> BuildRecord:
        """Store a build, its source and its tasks, each with ``domain.build.initial_status``."""
        now = self._clock.now()

        def create(db: sqlite3.Connection) -> BuildRecord:
            build = sqlite_tasks.load_build(
                db, sqlite_tasks.insert_build(db, spec, now, source, submitted_by)
            )
            assert build is not None  # inserted in this very transaction
            return build

        return await self._db.write(create)

    async def list_builds(
        self,
        repository: str = "",
        branch: str = "",
        status: TaskStatus | None = None,
        limit: int = 50,
        before: str = "",
        *,
        submitted_by: str = "",
    ) -> list[BuildRecord]:
        """Return up to ``limit`` builds, newest first, of a repository, branch and status
        (each only when given), older than build ``before`` (when given)."""

        def page(db: sqlite3.Connection, before_key: int | None, count: int) -> list[BuildRecord]:
            keys = sqlite_tasks.build_keys(db, repository, branch, before_key, count, submitted_by)
            return [build for key in keys if (build := sqlite_tasks.load_build(db, key))]

        return await build_listing.list_builds(
            lambda key, count: self._db.read(lambda db: page(db, key, count)),
            status,
            limit,
            before,
        )

    async def get_build(self, build_id: str) -> BuildRecord | None:
        """Return a build with its tasks."""
        key = row_key(build_id)
        if key is None:
            return None
        return await self._db.read(lambda db: sqlite_tasks.load_build(db, key))

    async def build_environment(self, build_id: str) -> Mapping[str, str] | None:
        """Return a build's submitted environment alone (None if there is no such build)."""
        key = row_key(build_id)
        if key is None:
            return None
        return await self._db.read(lambda db: sqlite_tasks.load_build_environment(db, key))

    async def list_build_tasks(self, build_id: str) -> list[TaskRecord]:
        """Return a build's tasks in configuration order."""
        key = row_key(build_id)
        if key is None:
            return []
        return await self._db.read(
            lambda db: load_tasks(db, "build_id = ?", (key,), order="position")
        )

    async def count_build_tasks(self, build_id: str, statuses: Collection[TaskStatus]) -> int:
        """Return how many of a build's tasks have one of ``statuses``."""
        key = row_key(build_id)
        names = [status.value for status in statuses]
        if key is None or not names:
            return 0
        return await self._db.read(lambda db: sqlite_tasks.count_build_tasks(db, key, names))

    async def create_attempts(
        self, build_id: str, attempts: Sequence[NewAttempt]
    ) -> list[TaskRecord]:
        """Add the new attempts of a re-run to a build, after its tasks; return them."""
        key, now = row_key(build_id), self._clock.now()
        if key is None:
            return []
        return await self._db.write(
            lambda db: sqlite_attempts.create_attempts(db, key, attempts, now)
        )

    # --- tasks ----------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """Return a task."""
        key = row_key(task_id)
        return None if key is None else await self._db.read(lambda db: load_task(db, key))

    async def task_credentials(self, worker_name: str, task_id: str) -> TaskCredentials:
        """Return a worker's session hash and a task's assignment in one read."""
        key = row_key(task_id) or 0  # no row has key 0: an impossible id finds no task

        def read(db: sqlite3.Connection) -> TaskCredentials:
            row = db.execute(credentials_query("?"), (worker_name, key)).fetchone()
            assert row is not None  # one row: the outer side of the join is a constant
            return credentials_from_row(row)

        return await self._db.read(read)

    async def queued_tasks(
        self, limit: int | None = None, after_sequence: int = 0
    ) -> list[TaskRecord]:
        """Return ``SCHEDULED`` tasks without a worker, oldest first: the first ``limit`` (all
        if ``None``) of those whose ``sequence`` is greater than ``after_sequence``."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        return await self._db.read(
            lambda db: load_tasks(db, f"{_QUEUED} AND id > ?", (after_sequence,), limit=limit)
        )

    async def queue_summary(self) -> QueueSummary:
        """Return how many tasks are queued and when the latest of them entered the queue."""

        def summarise(db: sqlite3.Connection) -> QueueSummary:
            row = db.execute(
                f"SELECT COUNT(*), MAX(updated_at) FROM tasks WHERE {_QUEUED}"
            ).fetchone()
            assert row is not None  # an aggregate always has one row
            return QueueSummary(int(row[0]), None if row[1] is None else float(row[1]))

        return await self._db.read(summarise)

    async def tasks_of_worker(self, worker_name: str) -> list[TaskRecord]:
        """Return the tasks that occupy a worker (claimed by it and not stopped), oldest first."""
        return await self._db.read(
            lambda db: load_tasks(db, "worker = ? AND stopped_at IS NULL", (worker_name,))
        )

    async def held_task_ids(self, worker_name: str) -> list[str]:
        """Return the ids of ``tasks_of_worker``, oldest first, without reading the tasks."""

        def read(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT id FROM tasks WHERE worker = ? AND stopped_at IS NULL ORDER BY id",
                (worker_name,),
            )
            return [str(row[0]) for row in rows]

        return await self._db.read(read)

    async def set_status(
        self,
        task_id: str,
        expected: Collection[TaskStatus],
        new: TaskStatus,
        failure_message: str = "",
    ) -> bool:
        """Set ``new`` if the status is one of ``expected``; return whether it changed."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return False
        return await self._db.write(
            lambda db: sqlite_tasks.set_status(db, key, expected, new, failure_message, now)
        )

    async def trigger_task(self, task_id: str) -> TaskRecord | None:
        """Clear a task's ``awaiting_trigger`` (if set); return the task as it is now."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return None
        return await self._db.write(lambda db: sqlite_tasks.trigger(db, key, now))

    async def claim_task(self, task_id: str, worker_name: str) -> TaskRecord | None:
        """Hand a ``SCHEDULED`` unclaimed task to a worker (fresh secrets); ``None`` if taken."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return None
        return await self._db.write(
            lambda db: sqlite_tasks.claim(db, key, worker_name, now, self._new_secret)
        )

    async def mark_started(self, task_id: str) -> bool:
        """Record the first ``TaskStarted`` of a claimed, not final task; return whether it did."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return False
        return await self._db.write(lambda db: sqlite_tasks.mark_started(db, key, now))

    async def record_command_results(self, task_id: str, results: Sequence[CommandResult]) -> None:
        """Merge results by command name (a later result replaces an earlier one)."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            raise NoSuchTaskError(task_id)
        await self._db.write(lambda db: sqlite_tasks.record_results(db, key, task_id, results, now))

    async def finish_task(
        self, task_id: str, status: TaskStatus, failure_message: str = ""
    ) -> bool:
        """Make a not yet final task final with ``status``; return whether it changed."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return False
        return await self._db.write(
            lambda db: sqlite_tasks.finish(db, key, status, failure_message, now)
        )

    async def request_cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel: an unclaimed task is ``ABORTED`` now, a claimed one is flagged for its worker."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return None
        return await self._db.write(lambda db: sqlite_tasks.request_cancel(db, key, now))

    async def tasks_to_stop_for(self, worker_name: str) -> list[str]:
        """Return ids of the worker's occupying tasks that were asked to cancel."""
        return await self._db.read(lambda db: sqlite_tasks.tasks_to_stop(db, worker_name))

    async def release_worker(self, worker_name: str) -> list[TaskRecord]:
        """Take every occupying task from a lost worker; return the changed tasks."""
        now = self._clock.now()
        return await self._db.write(lambda db: sqlite_tasks.release_worker(db, worker_name, now))

    # --- logs -----------------------------------------------------------------------------

    async def append_log(
        self, task_id: str, command: str, data: bytes, offset: int | None = None
    ) -> int:
        """Append bytes to a command's log; return its new size (``NoSuchTaskError`` if none).

        With ``offset``, only the bytes beyond what the log holds (``plan_append``), checked in
        the same write transaction: of two racing retries of a chunk one appends it.
        """
        return (await self.append_log_within_quota(task_id, command, data, offset, NO_QUOTA)).size

    async def append_log_within_quota(
        self, task_id: str, command: str, data: bytes, offset: int | None, quota_bytes: int
    ) -> AppendedLog:
        """Append what ``plan_log_write`` keeps of ``data``, sizes measured in the transaction."""
        key = row_key(task_id)
        if key is None:
            raise NoSuchTaskError(task_id)

        def append(db: sqlite3.Connection) -> AppendedLog:
            if db.execute("SELECT 1 FROM tasks WHERE id = ?", (key,)).fetchone() is None:
                raise NoSuchTaskError(task_id)
            held = sqlite_logs.log_size(db, key, command)
            write = plan_log_write(
                held, sqlite_logs.task_log_size(db, key), offset, data, quota_bytes
            )
            size = sqlite_logs.append_log(db, key, command, write.data) if write.data else held
            return AppendedLog(size, write.gap, write.quota_reached)

        return await self._db.write(append)

    async def log_size(self, task_id: str, command: str) -> int:
        """Return how many bytes a command's log holds."""
        key = row_key(task_id)
        if key is None:
            return 0
        return await self._db.read(lambda db: sqlite_logs.log_size(db, key, command))

    async def task_log_size(self, task_id: str) -> int:
        """Return how many bytes the logs of all a task's commands hold together."""
        key = row_key(task_id)
        if key is None:
            return 0
        return await self._db.read(lambda db: sqlite_logs.task_log_size(db, key))

    async def read_log(
        self, task_id: str, command: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        """Return up to ``limit`` bytes of a command's log from ``offset`` (all if ``None``)."""
        check_log_range(offset, limit)
        key = row_key(task_id)
        if key is None:
            return b""
        return await self._db.read(
            lambda db: sqlite_logs.read_range(db, key, command, offset, limit)
        )

    async def iter_log(self, task_id: str, command: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield a command's log from ``offset`` in pieces of at most ``LOG_CHUNK_LIMIT``."""
        check_log_range(offset, None)
        key = row_key(task_id)
        if key is None:
            return
        position = offset
        while True:
            # One chunk per round trip: memory stays bounded by the chunk size, and bytes
            # appended while iterating are picked up until the end is reached.
            piece = await self._db.read(
                functools.partial(sqlite_logs.read_piece, key=key, command=command, offset=position)
            )
            if not piece:
                return
            position += len(piece)
            yield piece

    # --- snapshots ------------------------------------------------------------------------

    async def put_snapshot(self, chunks: AsyncIterable[bytes]) -> SnapshotInfo:
        """Store the bytes ``chunks`` yields as a new snapshot; return it."""
        return await self._snapshots.put(chunks)

    async def get_snapshot(self, snapshot_id: str) -> SnapshotInfo | None:
        """Return a complete snapshot (``None`` if unknown or still being written)."""
        return await self._snapshots.get(snapshot_id)

    def iter_snapshot(self, snapshot_id: str) -> AsyncIterator[bytes]:
        """Yield a snapshot's bytes in order, one stored chunk at a time (nothing if unknown)."""
        return self._snapshots.iterate(snapshot_id)

    # --- workers --------------------------------------------------------------------------

    async def upsert_worker(
        self,
        name: str,
        labels: Mapping[str, str],
        resources_total: Mapping[str, float],
        session_token_hash: str,
        security_policy: SecurityPolicy | None = None,
    ) -> WorkerRecord:
        """Register (or re-register) a worker; an operator's pause survives, a drain does not."""
        now = self._clock.now()

        def upsert(db: sqlite3.Connection) -> WorkerRecord:
            db.execute(
                "INSERT INTO workers (name, labels, resources_total, session_token_hash, "
                "registered_at, last_seen, security_policy) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, "
                "resources_total = excluded.resources_total, "
                "security_policy = excluded.security_policy, "
                "session_token_hash = excluded.session_token_hash, "
                "registered_at = excluded.registered_at, last_seen = excluded.last_seen, "
                "disabled = CASE WHEN workers.disabled_until_register = 1 THEN 0 "
                "ELSE workers.disabled END, disabled_until_register = 0",
                (
                    name,
                    dumps_str_map(labels),
                    dumps_float_map(resources_total),
                    session_token_hash,
                    now,
                    now,
                    dumps_policy(security_policy),
                ),
            )
            return load_workers(db, "name = ?", (name,))[0]

        return await self._db.write(upsert)

    async def get_worker(self, name: str) -> WorkerRecord | None:
        """Return a worker."""
        workers = await self._db.read(lambda db: load_workers(db, "name = ?", (name,)))
        return workers[0] if workers else None

    async def worker_session_hash(self, name: str) -> str | None:
        """Return the hash of a worker's session token (``None`` if it is not registered)."""

        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT session_token_hash FROM workers WHERE name = ?", (name,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(read)

    async def list_workers(self) -> list[WorkerRecord]:
        """Return every worker, by name (read a page at a time, not as one snapshot)."""
        # The store has one connection thread: one read of a pool of thousands (converting
        # every row) would hold it for tens of milliseconds, and each poll and pickup meanwhile
        # would queue behind it. Pages let their calls in between.
        workers: list[WorkerRecord] = []
        while True:
            after = workers[-1].name if workers else ""
            page = await self._db.read(functools.partial(_workers_after, after=after))
            workers += page
            if len(page) < WORKERS_PAGE_SIZE:
                return workers

    async def check_in_worker(
        self,
        name: str,
        session_token_hash: str,
        resources_in_use: Mapping[str, float],
        running_task_ids: Sequence[str],
        *,
        queue_limit: int,
    ) -> WorkerCheckIn | None:
        """Record a poll of the worker with this session (last seen now, with what it
        reported); return it with its occupying tasks and the head of the queue, or ``None``."""
        parameters = check_in_parameters(
            self._clock.now(), name, session_token_hash, resources_in_use, running_task_ids
        )
        reported = reported_keys(running_task_ids)
        condition, read_parameters = check_in_read(name, queue_limit, reported)

        def check_in(db: sqlite3.Connection) -> WorkerCheckIn | None:
            row = db.execute(CHECK_IN.format(p="?"), parameters).fetchone()
            if row is None:
                return None
            tasks = load_tasks(db, condition.format(p="?"), read_parameters)
            return check_in_of(worker_from_row(row), tasks, reported)

        return await self._db.write(check_in)

    async def set_disabled(
        self, name: str, disabled: bool, *, until_register: bool = False
    ) -> WorkerRecord | None:
        """Pause or resume a worker; ``until_register``: the worker's own drain."""
        statement, parameters = disabled_update("?", disabled, until_register=until_register)

        def update(db: sqlite3.Connection) -> WorkerRecord | None:
            db.execute(statement, (*parameters, name))
            workers = load_workers(db, "name = ?", (name,))
            return workers[0] if workers else None

        return await self._db.write(update)

    # --- settings -------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting (e.g. ``REGISTRATION_TOKEN_KEY``)."""

        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(read)

    async def set_setting(self, key: str, value: str) -> None:
        """Store a setting, replacing any previous value."""
        await self._db.write(
            lambda db: db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""
        return await self._db.write(
            lambda db: (
                db.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, value),
                ).rowcount
                == 1
            )
        )
