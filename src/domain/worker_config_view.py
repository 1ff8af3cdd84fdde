"""The read-only view of an effective worker configuration that use cases need (a port).

The configuration adapter's ``WorkerConfig`` implements it; a use case such as the
``worker validate`` summary reads the configuration through it without importing the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.policy import SecurityPolicy
from domain.protocol import StandbyParameters


class UpstreamView(Protocol):
    """A controller the worker registers with."""

    @property
    def endpoint(self) -> str:
        """The controller's URL."""
        ...


class WorkerConfigView(Protocol):
    """What a worker configuration says: name, labels, resources, controllers, policy, standby."""

    @property
    def name(self) -> str:
        """The worker's name."""
        ...

    @property
    def labels(self) -> Mapping[str, str]:
        """The labels the worker offers besides its reserved ones."""
        ...

    @property
    def resources(self) -> Mapping[str, float]:
        """The resources the worker has in total."""
        ...

    @property
    def upstreams(self) -> Sequence[UpstreamView]:
        """The controllers the worker registers with."""
        ...

    def security_policy(self) -> SecurityPolicy:
        """What the worker lets tasks run."""
        ...

    def standby(self) -> StandbyParameters | None:
        """The standby instance kept warm, if any."""
        ...
