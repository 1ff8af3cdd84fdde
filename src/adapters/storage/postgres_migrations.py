"""Versioned schema of the PostgreSQL store: the SQLite versions in PostgreSQL's types.

Version ``n`` here means the same tables and columns as version ``n`` of
``sqlite_migrations.SQLITE_MIGRATIONS``; only the dialect differs (identity columns, ``BYTEA``,
``DOUBLE PRECISION``, ``BOOLEAN``). Several controller processes may open a fresh database at
once: every step runs in a transaction holding a transaction-level advisory lock, and reads the
version again under it, so each migration is applied exactly once and nobody sees half a schema.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from adapters.storage.schema_versions import (
    TASK_STATUSES_V1,
    Migration,
    check_order,
    latest_version,
    refuse_newer,
)

MIGRATION_LOCK_KEY = 0x63697272_75730001
"""Advisory lock (per database) held while the schema is read or changed ("cirrus" + 1)."""

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "builds, tasks, command results, log chunks, workers and settings",
        (
            """CREATE TABLE builds (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                environment TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            # An identity never hands out a value twice, so the id is the FIFO sequence.
            # Names may repeat within a build (as in Cirrus); ``position`` is the config order.
            f"""CREATE TABLE tasks (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                build_id BIGINT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ({TASK_STATUSES_V1})),
                spec TEXT NOT NULL,
                worker TEXT,
                client_secret TEXT NOT NULL DEFAULT '',
                server_secret TEXT NOT NULL DEFAULT '',
                cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
                failure_message TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                stopped_at DOUBLE PRECISION,
                UNIQUE (build_id, position)
            )""",
            """CREATE INDEX tasks_queue ON tasks (id)
                WHERE status = 'SCHEDULED' AND worker IS NULL""",
            """CREATE INDEX tasks_occupying ON tasks (worker, id)
                WHERE worker IS NOT NULL AND stopped_at IS NULL""",
            """CREATE TABLE command_results (
                task_id BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                position INTEGER NOT NULL,
                status TEXT NOT NULL,
                duration_in_nanos BIGINT NOT NULL,
                signaled_to_exit BOOLEAN NOT NULL,
                PRIMARY KEY (task_id, name)
            )""",
            # A log is a run of chunks keyed by their byte offset, so that reading any range or
            # streaming it needs one small row at a time, never the whole log.
            """CREATE TABLE log_chunks (
                task_id BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                command TEXT NOT NULL,
                start_offset BIGINT NOT NULL,
                data BYTEA NOT NULL,
                PRIMARY KEY (task_id, command, start_offset)
            )""",
            """CREATE TABLE workers (
                name TEXT PRIMARY KEY,
                labels TEXT NOT NULL,
                resources_total TEXT NOT NULL,
                resources_in_use TEXT NOT NULL DEFAULT '{}',
                running_task_ids TEXT NOT NULL DEFAULT '[]',
                disabled BOOLEAN NOT NULL DEFAULT FALSE,
                session_token_hash TEXT NOT NULL,
                registered_at DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE settings (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "workers.disabled_until_register: a worker's own drain lasts until it registers again",
        ("ALTER TABLE workers ADD COLUMN disabled_until_register BOOLEAN NOT NULL DEFAULT FALSE",),
    ),
    Migration(
        3,
        "tasks.awaiting_trigger: a trigger_type: manual task waits until it is triggered",
        ("ALTER TABLE tasks ADD COLUMN awaiting_trigger BOOLEAN NOT NULL DEFAULT FALSE",),
    ),
    Migration(
        4,
        "workers.security_policy: the policy a worker reported (proto3 JSON; {} allows all)",
        ("ALTER TABLE workers ADD COLUMN security_policy TEXT NOT NULL DEFAULT '{}'",),
    ),
    Migration(
        5,
        "builds.source and snapshots: where a build's code comes from, uploaded trees in chunks",
        (
            "ALTER TABLE builds ADD COLUMN source TEXT NOT NULL DEFAULT '{}'",
            # sha256 stays '' until the last chunk is written: readers only see whole snapshots.
            """CREATE TABLE snapshots (
                id TEXT PRIMARY KEY,
                sha256 TEXT NOT NULL DEFAULT '',
                size BIGINT NOT NULL DEFAULT 0,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            # Chunks of at most 1 MiB, so that uploads and downloads hold one at a time.
            """CREATE TABLE snapshot_chunks (
                snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                data BYTEA NOT NULL,
                PRIMARY KEY (snapshot_id, seq)
            )""",
        ),
    ),
    Migration(
        6,
        "repositories: registered forge repositories, credentials as ENCRYPTED[...] texts",
        (
            # key: OWNER/NAME case-folded; token and webhook_secret hold ENCRYPTED[...] texts of
            # the controller's cipher, never plain values.
            """CREATE TABLE repositories (
                key TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                forge TEXT NOT NULL,
                api_url TEXT NOT NULL,
                clone_url TEXT NOT NULL,
                token TEXT NOT NULL,
                webhook_secret TEXT NOT NULL,
                default_branch TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        7,
        "artifacts, task_tests and caches: committed artifact files, JUnit results, cache index",
        (
            # One row per committed file; blob_key is what retention asks about.
            """CREATE TABLE artifacts (
                task_id BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                path TEXT NOT NULL,
                size BIGINT NOT NULL,
                sha256 TEXT NOT NULL,
                type TEXT NOT NULL DEFAULT '',
                format TEXT NOT NULL DEFAULT '',
                blob_key TEXT NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (task_id, name, path)
            )""",
            # failures and notices: JSON lists, bounded by domain.artifacts.
            """CREATE TABLE task_tests (
                task_id BIGINT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
                passed INTEGER NOT NULL,
                failed INTEGER NOT NULL,
                skipped INTEGER NOT NULL,
                failures TEXT NOT NULL DEFAULT '[]',
                notices TEXT NOT NULL DEFAULT '[]'
            )""",
            # The blob store holds the caches; this index holds their last use for LRU eviction.
            """CREATE TABLE caches (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                repository TEXT NOT NULL,
                size BIGINT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                last_used_at DOUBLE PRECISION NOT NULL,
                created_by_task_id TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (scope, key)
            )""",
            "CREATE INDEX caches_repository ON caches (repository, last_used_at)",
        ),
    ),
    Migration(
        8,
        "re-runs and user tokens: tasks.attempt and tasks.rerun_of, user_tokens with roles",
        (
            "ALTER TABLE tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE tasks ADD COLUMN rerun_of BIGINT",
            # One re-run per attempt: two re-runs at once cannot both add an attempt.
            "CREATE UNIQUE INDEX tasks_rerun_of ON tasks (rerun_of) WHERE rerun_of IS NOT NULL",
            # token_hash: the SHA-256 of the token (domain.store.hash_token), never the token.
            """CREATE TABLE user_tokens (
                id BIGSERIAL PRIMARY KEY,
                name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
                token_hash TEXT NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        9,
        "forges: webhook_deliveries, status_outbox, status_watches, build_approvals, cron_jobs",
        (
            # Forge webhooks (issue 17): each delivery once, by the forge's delivery id.
            """CREATE TABLE webhook_deliveries (
                delivery_id TEXT PRIMARY KEY,
                forge TEXT NOT NULL,
                event TEXT NOT NULL,
                repository TEXT NOT NULL DEFAULT '',
                build_id TEXT NOT NULL DEFAULT '',
                received_at DOUBLE PRECISION NOT NULL
            )""",
            # Commit statuses to post, in id order per (repository, commit_sha, context);
            # next_attempt_at doubles as the claim of the controller posting a row.
            """CREATE TABLE status_outbox (
                id BIGSERIAL PRIMARY KEY,
                repository TEXT NOT NULL,
                commit_sha TEXT NOT NULL,
                context TEXT NOT NULL,
                state TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                target_url TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                last_error TEXT NOT NULL DEFAULT '',
                sent_at DOUBLE PRECISION
            )""",
            "CREATE INDEX status_outbox_unsent ON status_outbox (id) WHERE sent_at IS NULL",
            # Builds whose statuses go to a forge; reported: JSON {context: state} enqueued.
            """CREATE TABLE status_watches (
                build_id TEXT PRIMARY KEY,
                repository TEXT NOT NULL,
                commit_sha TEXT NOT NULL,
                reported TEXT NOT NULL DEFAULT '{}',
                finished INTEGER NOT NULL DEFAULT 0,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            # Builds of fork pull requests: their tasks wait until approved_at is set.
            """CREATE TABLE build_approvals (
                build_id TEXT PRIMARY KEY,
                reason TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                approved_at DOUBLE PRECISION,
                approved_by TEXT NOT NULL DEFAULT ''
            )""",
            # next_run: the next time the cron is due; claimed by UPDATE ... WHERE next_run = old.
            """CREATE TABLE cron_jobs (
                repository TEXT NOT NULL,
                name TEXT NOT NULL,
                branch TEXT NOT NULL,
                expression TEXT NOT NULL,
                next_run DOUBLE PRECISION NOT NULL,
                last_run DOUBLE PRECISION,
                last_build_id TEXT NOT NULL DEFAULT '',
                last_error TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (repository, name)
            )""",
        ),
    ),
    Migration(
        10,
        "builds.submitted_by: the name of the token that submitted a build (web 'mine')",
        ("ALTER TABLE builds ADD COLUMN submitted_by TEXT NOT NULL DEFAULT ''",),
    ),
)


async def current_version(connection: AsyncConnection[TupleRow]) -> int:
    """Return the database's schema version (0 for a database this store never touched)."""
    cursor = await connection.execute(
        "SELECT to_regclass('schema_version') IS NOT NULL"  # in the search path's schema
    )
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def _lock(connection: AsyncConnection[TupleRow]) -> None:
    await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))


async def migrate(
    connection: AsyncConnection[TupleRow],
    now: float,
    migrations: tuple[Migration, ...] = POSTGRES_MIGRATIONS,
) -> int:
    """Bring the database to the latest version; return the version it had before.

    ``connection`` must be in autocommit mode: each migration runs in its own transaction that
    takes the advisory lock first, so a failing migration leaves the previous version in place.
    """
    check_order(migrations)
    latest = latest_version(migrations)
    async with connection.transaction():
        await _lock(connection)
        before = await current_version(connection)
        refuse_newer(before, latest)
        # Under the lock: two first opens at once would otherwise race on the catalog.
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_version (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at DOUBLE PRECISION NOT NULL
            )"""
        )
    for migration in migrations:
        if migration.version <= before:
            continue
        async with connection.transaction():
            await _lock(connection)
            if await current_version(connection) >= migration.version:
                continue  # another process applied it while this one waited for the lock
            for statement in migration.statements:
                await connection.execute(statement)
            await connection.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.description, now),
            )
    return before
