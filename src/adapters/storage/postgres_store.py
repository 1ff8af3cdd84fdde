"""The controller's store on PostgreSQL: implements ``domain.store.ControllerStore``.

One ``PostgresStore`` owns a pool of connections. Several stores, in one process or in several
controller processes, may share one database: every guard is decided by the database (see
``postgres_tasks``), so a task is still claimed once. The semantics are those of ``SqliteStore``;
the same contract tests run against both.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Mapping, Sequence

from psycopg.rows import dict_row

from adapters.storage import build_listing, postgres_attempts, postgres_logs, postgres_tasks
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
from adapters.storage.postgres_artifacts import PostgresArtifacts
from adapters.storage.postgres_connection import Connection, PostgresDatabase
from adapters.storage.postgres_forge import postgres_forge_tables
from adapters.storage.postgres_migrations import POSTGRES_MIGRATIONS
from adapters.storage.postgres_repositories import PostgresRepositories
from adapters.storage.postgres_rows import (
    load_task,
    load_tasks,
    load_workers,
)
from adapters.storage.postgres_snapshots import PostgresSnapshots
from adapters.storage.postgres_task_calls import PostgresTaskCalls
from adapters.storage.postgres_user_tokens import PostgresUserTokens
from adapters.storage.schema_versions import Migration
from adapters.storage.spec_json import dumps_float_map, dumps_str_map
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

DEFAULT_MAX_CONNECTIONS = 10
"""Connections one store opens at most (each controller process has one store)."""

_QUEUED = "status = 'SCHEDULED' AND worker IS NULL"


class PostgresStore(PostgresTaskCalls):
    """``ControllerStore`` on a PostgreSQL database; open it with ``PostgresStore.open``."""

    def __init__(
        self, database: PostgresDatabase, clock: Clock, secret_factory: Callable[[], str]
    ) -> None:
        self._db = database
        self._clock = clock
        self._new_secret = secret_factory
        self._snapshots = PostgresSnapshots(database, clock)

    @classmethod
    async def open(
        cls,
        url: str,
        clock: Clock,
        *,
        secret_factory: Callable[[], str] = new_secret,
        migrations: tuple[Migration, ...] = POSTGRES_MIGRATIONS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> PostgresStore:
        """Connect to ``postgresql://user:pass@host:port/db`` and migrate its schema if needed."""
        database = await PostgresDatabase.open(url, clock.now(), migrations, max_connections)
        return cls(database, clock, secret_factory)

    async def aclose(self) -> None:
        """Close every connection; idempotent."""
        await self._db.aclose()

    def artifacts(self) -> PostgresArtifacts:
        """Return the artifacts, test results and cache index on this store's database."""
        return PostgresArtifacts(self._db)

    def forge(self) -> ForgeTables:
        """Return the forge tables (webhooks, statuses, approvals, crons) on this pool."""
        return postgres_forge_tables(self._db, self._clock)

    def repositories(self) -> PostgresRepositories:
        """Return the registry of repositories on this store's pool."""
        return PostgresRepositories(self._db, self._clock)

    def user_tokens(self) -> PostgresUserTokens:
        """Return the user tokens on this store's pool."""
        return PostgresUserTokens(self._db, self._clock)

    # --- builds ---------------------------------------------------------------------------

    async def create_build(
        self, spec: BuildSpec, source: BuildSource | None = None, *, submitted_by: str = ""
    ) -> BuildRecord:
        """Store a build, its source and its tasks, each with ``domain.build.initial_status``."""
        now = self._clock.now()

        async def create(db: Connection) -> BuildRecord:
            key = await postgres_tasks.insert_build(db, spec, now, source, submitted_by)
            build = await postgres_tasks.load_build(db, key)
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

        async def page(db: Connection, before_key: int | None, count: int) -> list[BuildRecord]:
            keys = await postgres_tasks.build_keys(
                db, repository, branch, before_key, count, submitted_by
            )
            builds = [await postgres_tasks.load_build(db, key) for key in keys]
            return [build for build in builds if build is not None]

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
        return await self._db.read(lambda db: postgres_tasks.load_build(db, key))

    async def build_environment(self, build_id: str) -> Mapping[str, str] | None:
        """Return a build's submitted environment alone (None if there is no such build)."""
        key = row_key(build_id)
        if key is None:
            return None
        return await self._db.read_statement(
            lambda db: postgres_tasks.load_build_environment(db, key)
        )

    async def list_build_tasks(self, build_id: str) -> list[TaskRecord]:
        """Return a build's tasks in configuration order."""
        key = row_key(build_id)
        if key is None:
            return []
        return await self._db.read_statement(
            lambda db: load_tasks(db, "build_id = %s", (key,), order="position")
        )

    async def count_build_tasks(self, build_id: str, statuses: Collection[TaskStatus]) -> int:
        """Return how many of a build's tasks have one of ``statuses``."""
        key = row_key(build_id)
        names = [status.value for status in statuses]
        if key is None or not names:
            return 0
        return await self._db.read_statement(
            lambda db: postgres_tasks.count_build_tasks(db, key, names)
        )

    async def create_attempts(
        self, build_id: str, attempts: Sequence[NewAttempt]
    ) -> list[TaskRecord]:
        """Add the new attempts of a re-run to a build, after its tasks; return them."""
        key, now = row_key(build_id), self._clock.now()
        if key is None:
            return []
        return await self._db.write(
            lambda db: postgres_attempts.create_attempts(db, key, attempts, now)
        )

    # --- tasks ----------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """Return a task."""
        key = row_key(task_id)
        return None if key is None else await self._db.read_statement(lambda db: load_task(db, key))

    async def task_credentials(self, worker_name: str, task_id: str) -> TaskCredentials:
        """Return a worker's session hash and a task's assignment in one read."""
        key = row_key(task_id) or 0  # no row has key 0: an impossible id finds no task

        async def read(db: Connection) -> TaskCredentials:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(credentials_query("%s"), (worker_name, key))
            row = await cursor.fetchone()
            assert row is not None  # one row: the outer side of the join is a constant
            return credentials_from_row(row)

        return await self._db.read_statement(read)

    async def queued_tasks(
        self, limit: int | None = None, after_sequence: int = 0
    ) -> list[TaskRecord]:
        """Return ``SCHEDULED`` tasks without a worker, oldest first: the first ``limit`` (all
        if ``None``) of those whose ``sequence`` is greater than ``after_sequence``."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        return await self._db.read_statement(
            lambda db: load_tasks(db, f"{_QUEUED} AND id > %s", (after_sequence,), limit=limit)
        )

    async def queue_summary(self) -> QueueSummary:
        """Return how many tasks are queued and when the latest of them entered the queue."""

        async def summarise(db: Connection) -> QueueSummary:
            cursor = await db.execute(
                f"SELECT COUNT(*), MAX(updated_at) FROM tasks WHERE {_QUEUED}"
            )
            row = await cursor.fetchone()
            assert row is not None  # an aggregate always has one row
            return QueueSummary(int(row[0]), None if row[1] is None else float(row[1]))

        return await self._db.read_statement(summarise)

    async def tasks_of_worker(self, worker_name: str) -> list[TaskRecord]:
        """Return the tasks that occupy a worker (claimed by it and not stopped), oldest first."""
        return await self._db.read_statement(
            lambda db: load_tasks(db, "worker = %s AND stopped_at IS NULL", (worker_name,))
        )

    async def held_task_ids(self, worker_name: str) -> list[str]:
        """Return the ids of ``tasks_of_worker``, oldest first, without reading the tasks."""

        async def read(db: Connection) -> list[str]:
            cursor = await db.execute(
                "SELECT id FROM tasks WHERE worker = %s AND stopped_at IS NULL ORDER BY id",
                (worker_name,),
            )
            return [str(row[0]) for row in await cursor.fetchall()]

        return await self._db.read_statement(read)

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
        return await self._db.write_statement(
            lambda db: postgres_tasks.set_status(db, key, expected, new, failure_message, now)
        )

    async def trigger_task(self, task_id: str) -> TaskRecord | None:
        """Clear a task's ``awaiting_trigger`` (if set); return the task as it is now."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return None
        return await self._db.write(lambda db: postgres_tasks.trigger(db, key, now))

    async def claim_task(self, task_id: str, worker_name: str) -> TaskRecord | None:
        """Hand a ``SCHEDULED`` unclaimed task to a worker (fresh secrets); ``None`` if taken."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return None
        return await self._db.write_statement(
            lambda db: postgres_tasks.claim(db, key, worker_name, now, self._new_secret)
        )

    async def mark_started(self, task_id: str) -> bool:
        """Record the first ``TaskStarted`` of a claimed, not final task; return whether it did."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return False
        return await self._db.write_statement(lambda db: postgres_tasks.mark_started(db, key, now))

    async def record_command_results(self, task_id: str, results: Sequence[CommandResult]) -> None:
        """Merge results by command name (a later result replaces an earlier one)."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            raise NoSuchTaskError(task_id)
        await self._db.write_statement(
            lambda db: postgres_tasks.record_results(db, key, task_id, results, now)
        )

    async def finish_task(
        self, task_id: str, status: TaskStatus, failure_message: str = ""
    ) -> bool:
        """Make a not yet final task final with ``status``; return whether it changed."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return False
        return await self._db.write_statement(
            lambda db: postgres_tasks.finish(db, key, status, failure_message, now)
        )

    async def request_cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel: an unclaimed task is ``ABORTED`` now, a claimed one is flagged for its worker."""
        key, now = row_key(task_id), self._clock.now()
        if key is None:
            return None
        return await self._db.write(lambda db: postgres_tasks.request_cancel(db, key, now))

    async def tasks_to_stop_for(self, worker_name: str) -> list[str]:
        """Return ids of the worker's occupying tasks that were asked to cancel."""
        return await self._db.read_statement(
            lambda db: postgres_tasks.tasks_to_stop(db, worker_name)
        )

    async def release_worker(self, worker_name: str) -> list[TaskRecord]:
        """Take every occupying task from a lost worker; return the changed tasks."""
        now = self._clock.now()
        return await self._db.write(lambda db: postgres_tasks.release_worker(db, worker_name, now))

    # --- logs -----------------------------------------------------------------------------

    async def append_log(
        self, task_id: str, command: str, data: bytes, offset: int | None = None
    ) -> int:
        """Append bytes to a command's log; return its new size (``NoSuchTaskError`` if none).

        With ``offset``, only the bytes beyond what the log holds (``plan_append``), measured
        under the task row's lock: of two racing retries of a chunk one appends it.
        """
        return (await self.append_log_within_quota(task_id, command, data, offset, NO_QUOTA)).size

    async def append_log_within_quota(
        self, task_id: str, command: str, data: bytes, offset: int | None, quota_bytes: int
    ) -> AppendedLog:
        """Append what ``plan_log_write`` keeps of ``data``, sizes measured under the row lock."""
        key = row_key(task_id)
        if key is None:
            raise NoSuchTaskError(task_id)

        async def append(db: Connection) -> AppendedLog:
            # Lock the task's row so that appends to it take turns: the sizes measured here are
            # still true when the plan is written. NO KEY UPDATE still lets others insert rows
            # that reference the task (results, other commands' chunks wait only here).
            cursor = await db.execute("SELECT 1 FROM tasks WHERE id = %s FOR NO KEY UPDATE", (key,))
            if await cursor.fetchone() is None:
                raise NoSuchTaskError(task_id)
            held = await postgres_logs.log_size(db, key, command)
            task_held = await postgres_logs.task_log_size(db, key)
            write = plan_log_write(held, task_held, offset, data, quota_bytes)
            if write.data:
                held = await postgres_logs.append_log(db, key, command, write.data)
            return AppendedLog(held, write.gap, write.quota_reached)

        return await self._db.write(append)

    async def log_size(self, task_id: str, command: str) -> int:
        """Return how many bytes a command's log holds."""
        key = row_key(task_id)
        if key is None:
            return 0
        return await self._db.read(lambda db: postgres_logs.log_size(db, key, command))

    async def task_log_size(self, task_id: str) -> int:
        """Return how many bytes the logs of all a task's commands hold together."""
        key = row_key(task_id)
        if key is None:
            return 0
        return await self._db.read(lambda db: postgres_logs.task_log_size(db, key))

    async def read_log(
        self, task_id: str, command: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        """Return up to ``limit`` bytes of a command's log from ``offset`` (all if ``None``)."""
        check_log_range(offset, limit)
        key = row_key(task_id)
        if key is None:
            return b""
        return await self._db.read(
            lambda db: postgres_logs.read_range(db, key, command, offset, limit)
        )

    async def iter_log(self, task_id: str, command: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield a command's log from ``offset`` in pieces of at most ``LOG_CHUNK_LIMIT``."""
        check_log_range(offset, None)
        key = row_key(task_id)
        if key is None:
            return
        position = offset
        while True:
            # One chunk per round trip, holding no connection between pieces: memory stays
            # bounded by the chunk size, and bytes appended meanwhile are picked up.
            piece = await self._db.read(
                functools.partial(
                    postgres_logs.read_piece, key=key, command=command, offset=position
                )
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
        parameters = (
            name,
            dumps_str_map(labels),
            dumps_float_map(resources_total),
            session_token_hash,
            now,
            now,
            dumps_policy(security_policy),
        )

        async def upsert(db: Connection) -> WorkerRecord:
            await db.execute(
                "INSERT INTO workers (name, labels, resources_total, session_token_hash, "
                "registered_at, last_seen, security_policy) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, "
                "resources_total = excluded.resources_total, "
                "security_policy = excluded.security_policy, "
                "session_token_hash = excluded.session_token_hash, "
                "registered_at = excluded.registered_at, last_seen = excluded.last_seen, "
                "disabled = workers.disabled AND NOT workers.disabled_until_register, "
                "disabled_until_register = FALSE",
                parameters,
            )
            return (await load_workers(db, "name = %s", (name,)))[0]

        return await self._db.write(upsert)

    async def get_worker(self, name: str) -> WorkerRecord | None:
        """Return a worker."""
        workers = await self._db.read_statement(lambda db: load_workers(db, "name = %s", (name,)))
        return workers[0] if workers else None

    async def worker_session_hash(self, name: str) -> str | None:
        """Return the hash of a worker's session token (``None`` if it is not registered)."""

        async def read(db: Connection) -> str | None:
            cursor = await db.execute(
                "SELECT session_token_hash FROM workers WHERE name = %s", (name,)
            )
            row = await cursor.fetchone()
            return None if row is None else str(row[0])

        return await self._db.read_statement(read)

    async def list_workers(self) -> list[WorkerRecord]:
        """Return every worker, by name."""
        return await self._db.read_statement(load_workers)

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

        async def touch(db: Connection) -> WorkerRecord | None:
            cursor = db.cursor(row_factory=dict_row)
            await cursor.execute(CHECK_IN.format(p="%s"), parameters)
            row = await cursor.fetchone()
            return None if row is None else worker_from_row(row)

        worker = await self._db.write_statement(touch)
        if worker is None:
            return None
        reported = reported_keys(running_task_ids)
        condition, read_parameters = check_in_read(name, queue_limit, reported)
        tasks = await self._db.read_statement(
            lambda db: load_tasks(db, condition.format(p="%s"), read_parameters)
        )
        return check_in_of(worker, tasks, reported)

    async def set_disabled(
        self, name: str, disabled: bool, *, until_register: bool = False
    ) -> WorkerRecord | None:
        """Pause or resume a worker; ``until_register``: the worker's own drain."""
        statement, parameters = disabled_update("%s", disabled, until_register=until_register)

        async def update(db: Connection) -> WorkerRecord | None:
            await db.execute(statement, (*parameters, name))
            workers = await load_workers(db, "name = %s", (name,))
            return workers[0] if workers else None

        return await self._db.write(update)

    # --- settings -------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting (e.g. ``REGISTRATION_TOKEN_KEY``)."""

        async def read(db: Connection) -> str | None:
            cursor = await db.execute("SELECT value FROM settings WHERE key = %s", (key,))
            row = await cursor.fetchone()
            return None if row is None else str(row[0])

        return await self._db.read_statement(read)

    async def set_setting(self, key: str, value: str) -> None:
        """Store a setting, replacing any previous value."""

        async def write(db: Connection) -> None:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._db.write_statement(write)

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""

        async def put(db: Connection) -> bool:
            cursor = await db.execute(
                "INSERT INTO settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                (key, value),
            )
            return cursor.rowcount == 1

        return await self._db.write_statement(put)
