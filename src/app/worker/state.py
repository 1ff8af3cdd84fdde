"""A read-only picture of a running worker, produced on demand for status views and probes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.protocol import frozen_float_map


@dataclass(frozen=True, slots=True)
class UpstreamSnapshot:
    """One controller the worker polls."""

    endpoint: str
    registered: bool = False
    last_poll_ok: bool = False
    # Wall-clock seconds since the epoch of the last successful poll; None before the first one.
    last_poll_time: float | None = None
    poll_interval_seconds: float = 10.0
    last_error: str = ""
    pending_reports: int = 0


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """One accepted task not yet reported with ``TaskStopped``."""

    task_id: str
    upstream: str
    isolation_kind: str
    # Wall-clock seconds since the epoch when the task was accepted.
    started_at: float
    resources: Mapping[str, float] = field(default_factory=frozen_float_map)
    phase: str = "starting"
    cancelling: bool = False


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """The worker at one moment: its controllers, running tasks and resources."""

    name: str
    upstreams: tuple[UpstreamSnapshot, ...] = ()
    tasks: tuple[TaskSnapshot, ...] = ()
    resources_total: Mapping[str, float] = field(default_factory=frozen_float_map)
    resources_in_use: Mapping[str, float] = field(default_factory=frozen_float_map)
    resources_free: Mapping[str, float] = field(default_factory=frozen_float_map)
    draining: bool = False
    paused: bool = False
    ephemeral: bool = False
    taken_at: float = 0.0

    @property
    def registered(self) -> bool:
        """Whether every upstream holds a session."""
        return bool(self.upstreams) and all(u.registered for u in self.upstreams)
