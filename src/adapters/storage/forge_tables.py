"""``domain.forge_store.ForgeStore`` over SQL, for SQLite and PostgreSQL alike.

The two databases differ here only in their placeholder and in how a statement runs, so the
logic is written once against ``SqlSteps`` (``sqlite_forge``, ``postgres_forge``): ``query``
reads rows, ``change`` runs statements in one write transaction, the first one optionally a
guard (a compare-and-set whose row count must be 1 for the rest to run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from domain.forge_store import CronJob, OutboxRow, StatusPost, StatusWatch
from domain.ports import Clock

Step = tuple[str, Sequence[Any]]


class SqlSteps(Protocol):
    """How one database runs the forge tables' statements (``{p}`` is its placeholder)."""

    placeholder: str

    async def query(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Return the rows of one ``SELECT``."""
        ...

    async def change(self, steps: Sequence[Step], *, guarded: bool) -> int:
        """Run ``steps`` in one transaction; return the first one's row count. ``guarded``:
        stop after the first step unless it changed exactly one row."""
        ...


_DUE = """SELECT id, repository, commit_sha, context, state, description, target_url,
    attempts, next_attempt_at FROM status_outbox o
    WHERE sent_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM status_outbox e WHERE e.sent_at IS NULL AND e.id < o.id
        AND e.repository = o.repository AND e.commit_sha = o.commit_sha AND e.context = o.context)
    AND next_attempt_at <= {p} ORDER BY id LIMIT {p}"""

_INSERT_POST = """INSERT INTO status_outbox (repository, commit_sha, context, state, description,
    target_url, created_at, next_attempt_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"""

_CRON_COLUMNS = (
    "repository, name, branch, expression, next_run, last_run, last_build_id, last_error"
)


class ForgeTables:
    """The forge tables of one database."""

    def __init__(self, steps: SqlSteps, clock: Clock) -> None:
        self._steps = steps
        self._clock = clock

    def _sql(self, text: str) -> str:
        return text.replace("{p}", self._steps.placeholder)

    async def _change(self, sql: str, *parameters: Any) -> int:
        return await self._steps.change([(self._sql(sql), parameters)], guarded=False)

    async def record_delivery(self, delivery_id: str, forge: str, event: str) -> bool:
        """Store a webhook delivery; return False if that id was stored before."""
        return (
            await self._change(
                "INSERT INTO webhook_deliveries (delivery_id, forge, event, received_at) "
                "VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (delivery_id) DO NOTHING",
                delivery_id,
                forge,
                event,
                self._clock.now(),
            )
            == 1
        )

    async def set_delivery_build(self, delivery_id: str, build_id: str) -> None:
        """Remember the build a delivery created."""
        await self._change(
            "UPDATE webhook_deliveries SET build_id = {p} WHERE delivery_id = {p}",
            build_id,
            delivery_id,
        )

    async def forget_delivery(self, delivery_id: str) -> None:
        """Drop a delivery whose handling failed (a redelivery is then handled)."""
        await self._change("DELETE FROM webhook_deliveries WHERE delivery_id = {p}", delivery_id)

    async def watch_build(self, build_id: str, repository: str, commit: str) -> None:
        """Report this build's statuses to ``commit`` from now on."""
        await self._change(
            "INSERT INTO status_watches (build_id, repository, commit_sha, created_at) "
            "VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (build_id) DO NOTHING",
            build_id,
            repository,
            commit,
            self._clock.now(),
        )

    async def unfinished_watches(self, limit: int) -> list[StatusWatch]:
        """Return the watched builds whose final statuses are not enqueued yet, oldest first."""
        rows = await self._steps.query(
            self._sql(
                "SELECT build_id, repository, commit_sha, reported FROM status_watches "
                "WHERE finished = 0 ORDER BY created_at, build_id LIMIT {p}"
            ),
            (limit,),
        )
        return [StatusWatch(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def record_report(
        self,
        watch: StatusWatch,
        reported: Mapping[str, str],
        posts: Sequence[StatusPost],
        *,
        finished: bool,
    ) -> bool:
        """Enqueue ``posts`` and store ``reported`` if nobody changed the report meanwhile."""
        now = self._clock.now()
        guard = (
            self._sql(
                "UPDATE status_watches SET reported = {p}, finished = {p} "
                "WHERE build_id = {p} AND reported = {p}"
            ),
            (_json(reported), int(finished), watch.build_id, _json(watch.reported)),
        )
        inserts = [
            (
                self._sql(_INSERT_POST),
                (p.repository, p.commit, p.context, p.state, p.description, p.target_url, now, now),
            )
            for p in posts
        ]
        return await self._steps.change([guard, *inserts], guarded=True) == 1

    async def due_statuses(self, now: float, limit: int) -> list[OutboxRow]:
        """Return the first unsent row of each (repository, commit, context) due by ``now``."""
        rows = await self._steps.query(self._sql(_DUE), (now, limit))
        return [
            OutboxRow(r[0], StatusPost(r[1], r[2], r[3], r[4], r[5], r[6]), r[7], float(r[8]))
            for r in rows
        ]

    async def claim_status(self, row: OutboxRow, until: float) -> bool:
        """Take a due row for this controller until ``until``, unless another one did."""
        return (
            await self._change(
                "UPDATE status_outbox SET next_attempt_at = {p} "
                "WHERE id = {p} AND next_attempt_at = {p} AND sent_at IS NULL",
                until,
                row.id,
                row.next_attempt_at,
            )
            == 1
        )

    async def status_sent(self, row_id: int, now: float) -> None:
        """Mark a row posted."""
        await self._change("UPDATE status_outbox SET sent_at = {p} WHERE id = {p}", now, row_id)

    async def status_failed(self, row_id: int, retry_at: float, error: str) -> None:
        """Count a failed attempt and retry the row at ``retry_at``."""
        await self._change(
            "UPDATE status_outbox SET attempts = attempts + 1, next_attempt_at = {p}, "
            "last_error = {p} WHERE id = {p}",
            retry_at,
            error[:500],
            row_id,
        )

    async def hold_build(self, build_id: str, reason: str) -> None:
        """Make a build's tasks wait for an approval."""
        await self._change(
            "INSERT INTO build_approvals (build_id, reason, created_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (build_id) DO NOTHING",
            build_id,
            reason,
            self._clock.now(),
        )

    async def approval_wait(self, build_id: str) -> str | None:
        """Return why a build waits for an approval (None: it does not)."""
        rows = await self._steps.query(
            self._sql(
                "SELECT reason FROM build_approvals WHERE build_id = {p} AND approved_at IS NULL"
            ),
            (build_id,),
        )
        return str(rows[0][0]) if rows else None

    async def approve_build(self, build_id: str, who: str) -> bool:
        """Approve a held build; False if it was not waiting."""
        return (
            await self._change(
                "UPDATE build_approvals SET approved_at = {p}, approved_by = {p} "
                "WHERE build_id = {p} AND approved_at IS NULL",
                self._clock.now(),
                who,
                build_id,
            )
            == 1
        )

    async def save_cron(self, cron: CronJob) -> bool:
        """Insert or replace a cron; return whether it was new."""
        now = self._clock.now()
        update = (
            self._sql(
                "UPDATE cron_jobs SET branch = {p}, expression = {p}, next_run = {p} "
                "WHERE repository = {p} AND name = {p}"
            ),
            (cron.branch, cron.expression, cron.next_run, cron.repository, cron.name),
        )
        if await self._steps.change([update], guarded=False) == 1:
            return False
        insert = self._sql(
            "INSERT INTO cron_jobs (repository, name, branch, expression, next_run, created_at) "
            "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (repository, name) DO NOTHING"
        )
        parameters = (cron.repository, cron.name, cron.branch, cron.expression, cron.next_run, now)
        return await self._steps.change([(insert, parameters)], guarded=False) == 1

    async def list_crons(self) -> list[CronJob]:
        """Return every cron, by repository and name."""
        rows = await self._steps.query(
            f"SELECT {_CRON_COLUMNS} FROM cron_jobs ORDER BY repository, name", ()
        )
        return [
            CronJob(r[0], r[1], r[2], r[3], float(r[4]), r[5], r[6] or "", r[7] or "") for r in rows
        ]

    async def claim_cron(self, cron: CronJob, next_run: float, now: float) -> bool:
        """Move a due cron's ``next_run`` forward unless another controller did."""
        return (
            await self._change(
                "UPDATE cron_jobs SET next_run = {p}, last_run = {p} "
                "WHERE repository = {p} AND name = {p} AND next_run = {p}",
                next_run,
                now,
                cron.repository,
                cron.name,
                cron.next_run,
            )
            == 1
        )

    async def cron_ran(self, cron: CronJob, build_id: str, error: str) -> None:
        """Record what a cron's run gave."""
        await self._change(
            "UPDATE cron_jobs SET last_build_id = {p}, last_error = {p} "
            "WHERE repository = {p} AND name = {p}",
            build_id,
            error[:500],
            cron.repository,
            cron.name,
        )


def _json(value: Mapping[str, str]) -> str:
    # Sorted keys: the guard compares the stored text with this one.
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
