"""Dispatch of a task to the factory of its isolation kind."""

from __future__ import annotations

import pytest

from app.worker.instances import IsolationInstances
from domain.errors import InstanceError
from domain.isolation import ContainerIsolation, NoneIsolation, TartIsolation
from domain.ports import Instance
from domain.protocol import AgentAwareTask
from tests.unit.worker.fakes import FakeInstance


class HostFactory:
    def __init__(self) -> None:
        self.created: list[str] = []

    async def create(self, task_id: str) -> Instance:
        self.created.append(task_id)
        return FakeInstance(task_id)


class ContainerFactory:
    def __init__(self) -> None:
        self.created: list[tuple[str, ContainerIsolation]] = []

    async def create(self, task_id: str, isolation: ContainerIsolation) -> Instance:
        self.created.append((task_id, isolation))
        return FakeInstance(task_id)


def task(task_id: str, isolation: object) -> AgentAwareTask:
    return AgentAwareTask(task_id=task_id, isolation=isolation)  # type: ignore[arg-type]


async def test_a_container_task_reaches_the_container_factory_with_its_isolation() -> None:
    host, containers = HostFactory(), ContainerFactory()
    instances = IsolationInstances({"none": host}, container=containers)
    isolation = ContainerIsolation(image="busybox", cpu=2.0, memory=512)
    instance = await instances.create(task("c1", isolation), None)
    assert instance.working_directory == "/work/c1"
    assert containers.created == [("c1", isolation)]
    assert host.created == []


async def test_a_none_task_reaches_the_host_factory() -> None:
    host, containers = HostFactory(), ContainerFactory()
    instances = IsolationInstances({"none": host}, container=containers)
    await instances.create(task("n1", NoneIsolation()), None)
    assert host.created == ["n1"]
    assert containers.created == []


async def test_a_kind_without_a_factory_is_an_instance_error_naming_it() -> None:
    instances = IsolationInstances({"none": HostFactory()})
    with pytest.raises(InstanceError, match="'container' is not supported"):
        await instances.create(task("c1", ContainerIsolation(image="busybox")), None)
    with pytest.raises(InstanceError, match="'tart' is not supported"):
        await instances.create(task("t1", TartIsolation(image="macos")), None)
