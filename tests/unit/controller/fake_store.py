"""In-memory fakes of the store's ``LogStore``, ``WorkerRegistry`` and ``SettingStore`` ports,
and ``FakeStore``: every narrow port on one shared state, as the SQL stores are on one database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace

from domain.build import TaskStatus
from domain.log_quota import NO_QUOTA, AppendedLog, plan_log_write
from domain.policy import SecurityPolicy
from domain.store import (
    LOG_CHUNK_LIMIT,
    NoSuchTaskError,
    TaskAssignment,
    TaskCredentials,
    WorkerCheckIn,
    WorkerRecord,
)
from tests.unit.controller.fake_tasks import (
    FakeBuildStore,
    FakeTaskQueue,
    MemoryState,
    held_and_reported,
)


def _check_range(offset: int, limit: int | None) -> None:
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError(f"a log range needs offset >= 0 and limit >= 0, got {offset}, {limit}")


class FakeLogStore(MemoryState):
    """``domain.store.LogStore`` in memory (logs of tasks of the same state only)."""

    async def append_log(
        self, task_id: str, command: str, data: bytes, offset: int | None = None
    ) -> int:
        """Append what is new of ``data`` (all of it without ``offset``); return the size."""
        return (await self.append_log_within_quota(task_id, command, data, offset, NO_QUOTA)).size

    async def append_log_within_quota(
        self, task_id: str, command: str, data: bytes, offset: int | None, quota_bytes: int
    ) -> AppendedLog:
        """Append what ``plan_log_write`` keeps of ``data``; say what it did."""
        if task_id not in self.tasks:
            raise NoSuchTaskError(task_id)
        log = self.logs.setdefault((task_id, command), bytearray())
        write = plan_log_write(
            len(log), await self.task_log_size(task_id), offset, data, quota_bytes
        )
        log += write.data
        return AppendedLog(len(log), write.gap, write.quota_reached)

    async def log_size(self, task_id: str, command: str) -> int:
        """Return how many bytes a command's log holds."""
        return len(self.logs.get((task_id, command), b""))

    async def task_log_size(self, task_id: str) -> int:
        """Return how many bytes a task's logs hold together."""
        return sum(len(log) for (task, _), log in self.logs.items() if task == task_id)

    async def read_log(
        self, task_id: str, command: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        """Return up to ``limit`` bytes of a command's log from ``offset``."""
        _check_range(offset, limit)
        log = bytes(self.logs.get((task_id, command), b""))
        return log[offset:] if limit is None else log[offset : offset + limit]

    async def iter_log(self, task_id: str, command: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield a command's log from ``offset`` in pieces of at most ``LOG_CHUNK_LIMIT``."""
        _check_range(offset, None)
        position = offset
        while piece := bytes(self.logs.get((task_id, command), b""))[
            position : position + LOG_CHUNK_LIMIT
        ]:
            position += len(piece)
            yield piece


class FakeWorkerRegistry(MemoryState):
    """``domain.store.WorkerRegistry`` in memory."""

    async def upsert_worker(
        self,
        name: str,
        labels: Mapping[str, str],
        resources_total: Mapping[str, float],
        session_token_hash: str,
        security_policy: SecurityPolicy | None = None,
    ) -> WorkerRecord:
        """Register a worker; an operator's pause survives, the worker's own drain does not."""
        now, known = self.clock.now(), self.workers.get(name)
        worker = WorkerRecord(
            name=name,
            session_token_hash=session_token_hash,
            registered_at=now,
            last_seen=now,
            labels=labels,
            resources_total=resources_total,
            security_policy=self.policy(security_policy),
        )
        if known is not None:
            disabled = known.disabled and name not in self.drains
            worker = replace(
                worker,
                resources_in_use=known.resources_in_use,
                running_task_ids=known.running_task_ids,
                disabled=disabled,
            )
        self.drains.discard(name)
        self.workers[name] = worker
        return worker

    async def get_worker(self, name: str) -> WorkerRecord | None:
        """Return a worker."""
        return self.workers.get(name)

    async def worker_session_hash(self, name: str) -> str | None:
        """Return the hash of a worker's session token."""
        worker = self.workers.get(name)
        return None if worker is None else worker.session_token_hash

    async def list_workers(self) -> list[WorkerRecord]:
        """Return every worker, by name."""
        return [self.workers[name] for name in sorted(self.workers)]

    async def check_in_worker(
        self,
        name: str,
        session_token_hash: str,
        resources_in_use: Mapping[str, float],
        running_task_ids: Sequence[str],
        *,
        queue_limit: int,
    ) -> WorkerCheckIn | None:
        """Record a poll of the worker with this session; return it with its occupying tasks
        and the head of the queue (``None``, nothing recorded, for another session)."""
        worker = self.workers.get(name)
        if worker is None or worker.session_token_hash != session_token_hash:
            return None
        worker = replace(
            worker,
            last_seen=self.clock.now(),
            resources_in_use=resources_in_use,
            running_task_ids=tuple(running_task_ids),
        )
        self.workers[name] = worker
        queue = sorted(
            (t for t in self.tasks.values() if t.status is TaskStatus.SCHEDULED and not t.worker),
            key=lambda task: task.sequence,
        )
        mine = held_and_reported(self, name, running_task_ids)
        return WorkerCheckIn(worker, mine.held, tuple(queue[:queue_limit]), mine.reported)

    async def set_disabled(
        self, name: str, disabled: bool, *, until_register: bool = False
    ) -> WorkerRecord | None:
        """Pause or resume a worker; a drain leaves an operator's pause as it is."""
        worker = self.workers.get(name)
        if worker is None:
            return None
        if disabled and until_register:
            if not worker.disabled:
                self.drains.add(name)
        else:
            self.drains.discard(name)
        self.workers[name] = replace(worker, disabled=disabled)
        return self.workers[name]

    async def task_credentials(self, worker_name: str, task_id: str) -> TaskCredentials:
        """Return a worker's session hash and a task's assignment."""
        task = self.tasks.get(task_id)
        assignment = (
            None
            if task is None
            else TaskAssignment(
                id=task.id,
                build_id=task.build_id,
                worker=task.worker,
                client_secret=task.client_secret,
                stopped=task.stopped_at is not None,
            )
        )
        return TaskCredentials(await self.worker_session_hash(worker_name), assignment)


class FakeSettingStore(MemoryState):
    """``domain.store.SettingStore`` in memory."""

    async def get_setting(self, key: str) -> str | None:
        """Return a stored setting."""
        return self.settings.get(key)

    async def set_setting(self, key: str, value: str) -> None:
        """Store a setting, replacing any previous value."""
        self.settings[key] = value

    async def put_setting_if_absent(self, key: str, value: str) -> bool:
        """Store a setting unless one exists; return whether this call stored it."""
        if key in self.settings:
            return False
        self.settings[key] = value
        return True


class FakeStore(FakeBuildStore, FakeTaskQueue, FakeLogStore, FakeWorkerRegistry, FakeSettingStore):
    """Every narrow port of the store on one in-memory state (no snapshots)."""
