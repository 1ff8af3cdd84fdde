"""Which factory creates a task's instance, by isolation kind."""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import InstanceError
from domain.isolation import ContainerIsolation, isolation_kind
from domain.modifiers import ResourceModifier
from domain.ports import ContainerFactory, Instance, InstanceFactory, VmFactory
from domain.protocol import AgentAwareTask


class IsolationInstances:
    """Dispatches to one factory per supported isolation kind.

    Factories that need the task's isolation parameters (``container``, ``tart``, ``vetu``) get
    their own slots, since the ``InstanceFactory`` port only passes the task id.
    """

    def __init__(
        self,
        factories: Mapping[str, InstanceFactory],
        container: ContainerFactory | None = None,
        vms: Mapping[str, VmFactory] | None = None,
    ) -> None:
        self._factories = dict(factories)
        self._container = container
        self._vms = dict(vms or {})

    @property
    def vms(self) -> dict[str, VmFactory]:
        """The VM factories by isolation kind (``tart``, ``vetu``)."""
        return dict(self._vms)

    async def create(
        self,
        task: AgentAwareTask,
        modifier: ResourceModifier | None,
        cli_env: Mapping[str, str] | None = None,
    ) -> Instance:
        """Create the task's instance with the factory of its isolation kind."""
        isolation = task.isolation
        if isinstance(isolation, ContainerIsolation) and self._container is not None:
            return await self._container.create(task.task_id, isolation)
        kind = isolation_kind(isolation)
        vm = self._vms.get(kind)
        if vm is not None:
            # Only Vetu uses a modifier's arguments (inserted into ``vetu run``), as the original.
            run_args = modifier.run_args if modifier is not None else ()
            return await vm.create(task.task_id, isolation, run_args=run_args, cli_env=cli_env)
        factory = self._factories.get(kind)
        if factory is None:
            raise InstanceError(f"isolation {kind!r} is not supported by this worker yet")
        return await factory.create(task.task_id)
