"""Which factory creates a task's instance, by isolation kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from domain.errors import InstanceError
from domain.isolation import ContainerIsolation, isolation_kind
from domain.modifiers import ResourceModifier
from domain.ports import Instance, InstanceFactory
from domain.protocol import AgentAwareTask


class InstanceProvider(Protocol):
    """Creates the instance a task asks for."""

    async def create(self, task: AgentAwareTask, modifier: ResourceModifier | None) -> Instance:
        """Create the task's instance; raise ``InstanceError`` if it cannot."""
        ...


class ContainerFactory(Protocol):
    """Creates a task's container from its ``container`` isolation (image, cpu, volumes…)."""

    async def create(self, task_id: str, isolation: ContainerIsolation) -> Instance:
        """Start the task's container; raise ``InstanceError`` if it cannot."""
        ...


class IsolationInstances:
    """Dispatches to one ``InstanceFactory`` per supported isolation kind.

    Factories that need the task's isolation parameters (``container``) get their own slot,
    since the ``InstanceFactory`` port only passes the task id.
    """

    def __init__(
        self,
        factories: Mapping[str, InstanceFactory],
        container: ContainerFactory | None = None,
    ) -> None:
        self._factories = dict(factories)
        self._container = container

    def supports(self, kind: str) -> bool:
        """Whether this worker can create instances of ``kind``."""
        if kind == ContainerIsolation.kind:
            return self._container is not None
        return kind in self._factories

    async def create(self, task: AgentAwareTask, modifier: ResourceModifier | None) -> Instance:
        """Create the task's instance with the factory of its isolation kind."""
        isolation = task.isolation
        if isinstance(isolation, ContainerIsolation) and self._container is not None:
            return await self._container.create(task.task_id, isolation)
        kind = isolation_kind(isolation)
        factory = self._factories.get(kind)
        if factory is None:
            raise InstanceError(f"isolation {kind!r} is not supported by this worker yet")
        return await factory.create(task.task_id)
