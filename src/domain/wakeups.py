"""Wake-ups of held polls across controller processes that share one database: the ports.

A process that queues a task no local held poll can take announces it (``QueuedNotice``)
through a ``WakeRelay`` (PostgreSQL ``NOTIFY`` in ``adapters/storage/postgres_wakeups.py``);
the other processes' relays deliver it to their ``WakeTarget`` (``app.controller.long_poll
.PollWaiters``), which offers it to the polls that may take it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QueuedNotice:
    """A task queued by some process: its id and the labels a worker needs for it."""

    task_id: str
    labels: Mapping[str, str]


class WakeTarget(Protocol):
    """Where a relay delivers the wake-ups of other processes (``PollWaiters``)."""

    def deliver(self, worker_name: str | None) -> None:
        """Wake the local polls of one worker, or all of them for ``None``."""
        ...

    def waiting_workers(self) -> list[str]:
        """Return the workers that have a held poll here."""
        ...

    def busy_waiting_workers(self) -> list[str]:
        """Return the workers with a held poll here that may hold tasks."""
        ...

    async def deliver_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Offer tasks another process queued to the local polls that may take them."""
        ...


class WakeRelay(Protocol):
    """Carries wake-ups between controller processes that share one database."""

    def publish(self, worker_name: str | None) -> None:
        """Tell the other processes (without waiting): one worker, or all for ``None``."""
        ...

    def publish_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Tell the other processes (without waiting) of tasks no local poll could take."""
        ...

    async def run(self, target: WakeTarget) -> None:
        """Deliver the other processes' wake-ups to ``target`` until cancelled."""
        ...
