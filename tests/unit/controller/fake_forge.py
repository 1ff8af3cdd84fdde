"""Hand-written fakes of the forge ports: the status outbox of ``ForgeStore``, a repository
registry, secrets in clear and a ``ForgeClient`` whose answers a test sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Self

from domain.forge_store import CronJob, OutboxRow, StatusPost, StatusWatch
from domain.repositories import Forge, Repository, SavedRepository, repository_key

REPOSITORY = Repository(
    name="octo/demo",
    forge=Forge.GITHUB,
    api_url="https://api.example.test",
    clone_url="https://example.test/octo/demo.git",
    encrypted_token="token-of-demo",
    encrypted_webhook_secret="secret-of-demo",
)


class ClearSecrets:
    """A ``SecretReader`` whose "encrypted" values are the plain texts."""

    def decrypt(self, value: str, repository: str) -> str:
        """Return ``value`` as it is."""
        return value


class FakeRepositories:
    """A ``RepositoryStore`` in a dict."""

    def __init__(self, *repositories: Repository) -> None:
        self.by_key = {repository.key: repository for repository in repositories}

    async def save_repository(
        self, repository: Repository, *, replace_webhook_secret: bool
    ) -> SavedRepository:
        """Insert or replace ``repository``."""
        created = repository.key not in self.by_key
        self.by_key[repository.key] = repository
        return SavedRepository(repository, created)

    async def get_repository(self, name: str) -> Repository | None:
        """Return the repository named ``name`` (any case), or None."""
        return self.by_key.get(repository_key(name))

    async def list_repositories(self) -> list[Repository]:
        """Return every repository, by key."""
        return [self.by_key[key] for key in sorted(self.by_key)]


@dataclass
class FakeOutbox:
    """The status outbox of a ``ForgeStore`` in a list; the other tables are not kept."""

    rows: list[OutboxRow] = field(default_factory=list)
    sent: dict[int, float] = field(default_factory=dict)
    failures: list[tuple[int, float, str]] = field(default_factory=list)
    watches: list[StatusWatch] = field(default_factory=list)
    watch_queries: int = 0

    def enqueue(self, post: StatusPost, due: float = 0.0) -> OutboxRow:
        """Add an unsent row due at ``due``; return it."""
        row = OutboxRow(len(self.rows) + 1, post, 0, due)
        self.rows.append(row)
        return row

    async def due_statuses(self, now: float, limit: int) -> list[OutboxRow]:
        """Return the unsent rows due by ``now``, by id."""
        due = [r for r in self.rows if r.id not in self.sent and r.next_attempt_at <= now]
        return due[:limit]

    async def claim_status(self, row: OutboxRow, until: float) -> bool:
        """Move the row's next attempt to ``until`` if nobody moved it."""
        index = row.id - 1
        if self.rows[index].next_attempt_at != row.next_attempt_at:
            return False
        self.rows[index] = replace(row, next_attempt_at=until)
        return True

    async def status_sent(self, row_id: int, now: float) -> None:
        """Mark a row posted."""
        self.sent[row_id] = now

    async def status_failed(self, row_id: int, retry_at: float, error: str) -> None:
        """Count a failed attempt and retry the row at ``retry_at``."""
        row = self.rows[row_id - 1]
        self.rows[row_id - 1] = replace(row, attempts=row.attempts + 1, next_attempt_at=retry_at)
        self.failures.append((row_id, retry_at, error))

    # The rest of ``ForgeStore``: not what the drainer uses.

    async def record_delivery(self, delivery_id: str, forge: str, event: str) -> bool:
        raise AssertionError("not kept by this fake")

    async def set_delivery_build(self, delivery_id: str, build_id: str) -> None:
        raise AssertionError("not kept by this fake")

    async def forget_delivery(self, delivery_id: str) -> None:
        raise AssertionError("not kept by this fake")

    async def watch_build(self, build_id: str, repository: str, commit: str) -> None:
        raise AssertionError("not kept by this fake")

    async def unfinished_watches(self, limit: int) -> list[StatusWatch]:
        """Return the first ``limit`` of ``watches``; count the query."""
        self.watch_queries += 1
        return self.watches[:limit]

    async def record_report(
        self,
        watch: StatusWatch,
        reported: Mapping[str, str],
        posts: Sequence[StatusPost],
        *,
        finished: bool,
    ) -> bool:
        raise AssertionError("not kept by this fake")

    async def hold_build(self, build_id: str, reason: str) -> None:
        raise AssertionError("not kept by this fake")

    async def approval_wait(self, build_id: str) -> str | None:
        raise AssertionError("not kept by this fake")

    async def approve_build(self, build_id: str, who: str) -> bool:
        raise AssertionError("not kept by this fake")

    async def save_cron(self, cron: CronJob) -> bool:
        raise AssertionError("not kept by this fake")

    async def list_crons(self) -> list[CronJob]:
        raise AssertionError("not kept by this fake")

    async def claim_cron(self, cron: CronJob, next_run: float, now: float) -> bool:
        raise AssertionError("not kept by this fake")

    async def cron_ran(self, cron: CronJob, build_id: str, error: str) -> None:
        raise AssertionError("not kept by this fake")


@dataclass
class FakeForgeClient:
    """A ``ForgeClient`` that records the statuses posted, or raises ``error``."""

    repository: str
    token: str
    error: Exception | None = None
    pause_until: float | None = None
    posted: list[StatusPost] = field(default_factory=list)
    closed: bool = False

    async def aclose(self) -> None:
        """Remember that it was closed."""
        self.closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def file_at(self, repository: str, path: str, ref: str) -> str | None:
        """Return None: no files."""
        return None

    async def branch_head(self, repository: str, branch: str) -> str:
        """Return a fixed commit."""
        return "0" * 40

    async def compare_files(self, repository: str, base: str, head: str) -> tuple[str, ...] | None:
        """Return None: unknown."""
        return None

    async def pull_files(self, repository: str, number: int) -> tuple[str, ...] | None:
        """Return None: unknown."""
        return None

    async def permission(self, repository: str, user: str) -> str:
        """Return "none"."""
        return "none"

    async def post_status(self, post: StatusPost) -> None:
        """Record ``post``, or raise the set error."""
        if self.error is not None:
            raise self.error
        self.posted.append(post)
