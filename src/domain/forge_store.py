"""What the controller keeps about forges: webhook deliveries, the status outbox, the builds
whose statuses are reported, fork builds waiting for approval, and cron jobs.

A port (``ForgeStore``) over one database shared by every controller: each change that two
controllers could make at once is a compare-and-set the adapter performs atomically (a delivery
id inserted once, an outbox row claimed by moving its ``next_attempt_at``, a report recorded
against the one it replaces, a cron run claimed by moving its ``next_run``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StatusPost:
    """One commit status to post: ``state`` is the forge's word (pending, success, ...)."""

    repository: str
    commit: str
    context: str
    state: str
    description: str = ""
    target_url: str = ""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored status not posted yet."""

    id: int
    post: StatusPost
    attempts: int
    next_attempt_at: float


@dataclass(frozen=True, slots=True)
class StatusWatch:
    """A build whose statuses go to its commit; ``reported`` maps context to the last state
    enqueued for it."""

    build_id: str
    repository: str
    commit: str
    reported: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CronJob:
    """A cron of a repository: a build of ``branch`` whenever ``expression`` falls due."""

    repository: str
    name: str
    branch: str
    expression: str
    next_run: float
    last_run: float | None = None
    last_build_id: str = ""
    last_error: str = ""


class ForgeStore(Protocol):
    """The forge tables of the controller's database (SQLite, PostgreSQL)."""

    async def record_delivery(self, delivery_id: str, forge: str, event: str) -> bool:
        """Store a webhook delivery; return False if that id was stored before."""
        ...

    async def set_delivery_build(self, delivery_id: str, build_id: str) -> None:
        """Remember the build a delivery created."""
        ...

    async def forget_delivery(self, delivery_id: str) -> None:
        """Drop a delivery whose handling failed, so that the forge's redelivery is handled."""
        ...

    async def watch_build(self, build_id: str, repository: str, commit: str) -> None:
        """Report this build's statuses to ``commit`` from now on."""
        ...

    async def unfinished_watches(self, limit: int) -> list[StatusWatch]:
        """Return the watched builds whose final statuses are not enqueued yet, oldest first."""
        ...

    async def record_report(
        self,
        watch: StatusWatch,
        reported: Mapping[str, str],
        posts: Sequence[StatusPost],
        *,
        finished: bool,
    ) -> bool:
        """Enqueue ``posts`` and store ``reported`` if the stored report is still
        ``watch.reported`` (else another controller did it: nothing is changed, False)."""
        ...

    async def due_statuses(self, now: float, limit: int) -> list[OutboxRow]:
        """Return the unsent rows, by id, that are the first unsent one of their
        (repository, commit, context) and due by ``now``."""
        ...

    async def claim_status(self, row: OutboxRow, until: float) -> bool:
        """Move a due row's ``next_attempt_at`` to ``until`` if nobody else did; return
        whether this call did (then it is this controller's to post)."""
        ...

    async def status_sent(self, row_id: int, now: float) -> None:
        """Mark a row posted."""
        ...

    async def status_failed(self, row_id: int, retry_at: float, error: str) -> None:
        """Count a failed attempt and retry the row at ``retry_at``."""
        ...

    async def hold_build(self, build_id: str, reason: str) -> None:
        """Make a build's tasks wait for an approval, saying ``reason``."""
        ...

    async def approval_wait(self, build_id: str) -> str | None:
        """Return why a build's tasks wait for an approval (None: they do not)."""
        ...

    async def approve_build(self, build_id: str, who: str) -> bool:
        """Approve a held build; return False if it was not waiting."""
        ...

    async def save_cron(self, cron: CronJob) -> bool:
        """Insert or replace a cron (by repository and name); return whether it was new."""
        ...

    async def list_crons(self) -> list[CronJob]:
        """Return every cron, by repository and name."""
        ...

    async def claim_cron(self, cron: CronJob, next_run: float, now: float) -> bool:
        """Move a due cron's ``next_run`` to ``next_run`` if it is still ``cron.next_run``;
        return whether this call did (then this controller runs it, once)."""
        ...

    async def cron_ran(self, cron: CronJob, build_id: str, error: str) -> None:
        """Record what a cron's run gave: the build, or why there is none."""
        ...


@runtime_checkable
class HasForgeStore(Protocol):
    """A controller store that also keeps the forge tables in its database."""

    def forge(self) -> ForgeStore:
        """Return the forge tables on this store's database."""
        ...
