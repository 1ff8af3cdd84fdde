"""An accepted task as the worker tracks it, from acceptance until ``TaskStopped`` left."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from app.worker.outbox import Outbox
from app.worker.upstream import Upstream
from domain.isolation import isolation_kind
from domain.protocol import AgentAwareTask, TaskRef

T = TypeVar("T")


class TaskCancelled(Exception):
    """The task was asked to stop while it waited for something."""


@dataclass(eq=False)
class RunningTask:
    """An accepted task, from acceptance until its ``TaskStopped`` was delivered."""

    task: AgentAwareTask
    upstream: Upstream
    outbox: Outbox
    accepted_at: float
    phase: str = "accepted"
    # Set once its instance exists (``TaskStarted``): only then did it hold resources.
    started: bool = False
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once its ``TaskStarted`` was delivered, or once it never will be (refused, failed).
    announced: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self.task.task_id

    @property
    def ref(self) -> TaskRef:
        """Identity for task-scoped calls."""
        return TaskRef(self.task.task_id, self.task.client_secret)

    @property
    def resources(self) -> Mapping[str, float]:
        """What the task uses, as the controller announced it."""
        return self.task.resources_to_use

    @property
    def isolation_kind(self) -> str:
        """``none``, ``container``, ``tart``…"""
        return isolation_kind(self.task.isolation)

    def cancel(self) -> None:
        """Ask the task to stop: the running command is aborted, nothing else runs."""
        self.cancel_requested.set()

    async def unless_cancelled(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the task is cancelled first (then raise TaskCancelled)."""
        if self.cancel_requested.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise TaskCancelled
        inner = asyncio.ensure_future(awaitable)
        waiter = asyncio.ensure_future(self.cancel_requested.wait())
        try:
            await asyncio.wait({inner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if inner.done():
            return inner.result()
        inner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await inner
        raise TaskCancelled
