"""The controller's telemetry port: what it reports, and the gauges' immutable snapshot.

The scheduler and the metrics refresher call ``ControllerMetrics``; the adapter
(``adapters/telemetry/controller_instruments.py``) turns the calls into OpenTelemetry
instruments and a Prometheus page. Observable gauges never read the controller's live state:
the refresher publishes a ``ControllerGauges`` and the exporters read the latest one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QueueGauge:
    """One label set's queue: how many tasks wait and since when the oldest one does.

    ``labels`` is the stable ``k=v,k=v`` form; ``oldest_since`` is the time (the controller's
    clock) at which the oldest waiting task entered the queue, ``None`` when none waits.
    """

    labels: str
    length: int = 0
    oldest_since: float | None = None


@dataclass(frozen=True, slots=True)
class ControllerGauges:
    """What the controller's observable gauges report, as of one moment."""

    queues: tuple[QueueGauge, ...] = ()
    waiting_by_reason: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    workers_online: int = 0
    workers_paused: int = 0
    workers_offline: int = 0

    def __post_init__(self) -> None:
        # Copies, so that a caller changing its collections later cannot change a snapshot.
        object.__setattr__(self, "queues", tuple(self.queues))
        object.__setattr__(
            self, "waiting_by_reason", MappingProxyType(dict(self.waiting_by_reason))
        )

    __hash__ = None  # type: ignore[assignment]  # the read-only map is not hashable


class ControllerMetrics(Protocol):
    """What the controller reports; every method returns at once and never raises."""

    @property
    def prometheus_enabled(self) -> bool:
        """Whether ``/metrics`` is served."""
        ...

    def prometheus_text(self) -> bytes:
        """The current metrics in the Prometheus text format."""
        ...

    def task_assigned(self, worker: str, pickup_latency_seconds: float | None) -> None:
        """A task was claimed for ``worker`` after waiting that long in the queue."""
        ...

    def task_waiting(self, reason: str) -> None:
        """A queued task was seen waiting for the reason category ``reason``."""
        ...

    def poll_woken(self) -> None:
        """A held poll was woken to look for work again."""
        ...

    def publish_gauges(self, gauges: ControllerGauges) -> None:
        """Replace the snapshot the observable gauges report."""
        ...
