"""The headers of a task-scoped controller call, as a controller client names them (a port).

The worker's clone downloads a task's source snapshot with the same credentials as its other
task calls; the client knows them. A client that wraps another (the metered client) exposes the
wrapped one as ``inner``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from domain.protocol import TaskRef

# How many ``inner`` links are followed: a bound, in case of a cycle.
_MAX_WRAPPERS = 8


@runtime_checkable
class TaskHeaders(Protocol):
    """A controller client that can name a task's call headers (to download its snapshot)."""

    def task_headers(self, task: TaskRef) -> dict[str, str]:
        """The headers of a task-scoped call."""
        ...


def call_headers(client: object, task: TaskRef) -> dict[str, str]:
    """The task-scoped call headers of ``client``, or of the client it wraps (``inner``, as the
    metered client does); none when no client in the chain can name them."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(client, TaskHeaders):
            return client.task_headers(task)
        client = getattr(client, "inner", None)
    return {}
