"""Which factory creates a task's instance, by isolation kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.errors import InstanceError
from domain.isolation import ContainerIsolation, Isolation, isolation_kind
from domain.modifiers import ResourceModifier
from domain.ports import Instance, InstanceFactory
from domain.protocol import AgentAwareTask


class InstanceProvider(Protocol):
    """Creates the instance a task asks for."""

    async def create(
        self,
        task: AgentAwareTask,
        modifier: ResourceModifier | None,
        cli_env: Mapping[str, str] | None = None,
    ) -> Instance:
        """Create the task's instance; raise ``InstanceError`` if it cannot.

        ``cli_env`` (``TRACEPARENT``/``TRACESTATE``) goes to the isolation tool's processes.
        """
        ...


class ContainerFactory(Protocol):
    """Creates a task's container from its ``container`` isolation (image, cpu, volumes…)."""

    async def create(self, task_id: str, isolation: ContainerIsolation) -> Instance:
        """Start the task's container; raise ``InstanceError`` if it cannot."""
        ...


class WarmableInstance(Instance, Protocol):
    """A VM instance: an ``Instance`` that can also be warmed up as the standby."""

    @property
    def name(self) -> str:
        """The VM's name (``CIRRUS_VM_ID``)."""
        ...

    @property
    def attributes(self) -> Mapping[str, str | float]:
        """Metric attributes: image, instance_type, instance_cpus."""
        ...

    async def warm_up(self, script: str, timeout_seconds: float) -> None:
        """Run the standby's warm-up script; a timeout is no failure."""
        ...


class VmFactory(Protocol):
    """Creates the VMs of one tool (``tart`` or ``vetu``)."""

    @property
    def tool(self) -> str:
        """``tart`` or ``vetu``."""
        ...

    async def create(
        self,
        task_id: str,
        isolation: Isolation,
        *,
        run_args: Sequence[str] = (),
        ident: str | None = None,
        lazy_pull: bool = False,
        cli_env: Mapping[str, str] | None = None,
    ) -> WarmableInstance:
        """Boot a VM and connect to it; ``InstanceError`` if it cannot."""
        ...

    async def cleanup_orphans(self) -> list[str]:
        """Delete the VMs that dead workers left behind; return their names."""
        ...

    async def pull(self, image: str, cli_env: Mapping[str, str] | None = None) -> None:
        """Pull ``image`` ahead of use; ``InstanceError`` on failure."""
        ...


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

    def supports(self, kind: str) -> bool:
        """Whether this worker can create instances of ``kind``."""
        if kind == ContainerIsolation.kind:
            return self._container is not None
        return kind in self._factories or kind in self._vms

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
