"""Which factory creates a task's instance, by isolation kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from domain.errors import InstanceError
from domain.isolation import isolation_kind
from domain.modifiers import ResourceModifier
from domain.ports import Instance, InstanceFactory
from domain.protocol import AgentAwareTask


class InstanceProvider(Protocol):
    """Creates the instance a task asks for."""

    async def create(self, task: AgentAwareTask, modifier: ResourceModifier | None) -> Instance:
        """Create the task's instance; raise ``InstanceError`` if it cannot."""
        ...


class IsolationInstances:
    """Dispatches to one ``InstanceFactory`` per supported isolation kind."""

    def __init__(self, factories: Mapping[str, InstanceFactory]) -> None:
        self._factories = dict(factories)

    def supports(self, kind: str) -> bool:
        """Whether this worker can create instances of ``kind``."""
        return kind in self._factories

    async def create(self, task: AgentAwareTask, modifier: ResourceModifier | None) -> Instance:
        """Create the task's instance with the factory of its isolation kind."""
        kind = isolation_kind(task.isolation)
        factory = self._factories.get(kind)
        if factory is None:
            raise InstanceError(f"isolation {kind!r} is not supported by this worker yet")
        return await factory.create(task.task_id)
