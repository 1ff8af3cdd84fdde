"""The worker's composition root builds a worker on fakes of its controller and instances."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from dependency_injector import providers

from adapters import cache_archive
from adapters.blob_transfer import BlobTransfer
from adapters.config.effective import Upstream, WorkerConfig
from adapters.telemetry.controller_calls import MeteredControllerClient
from app.worker.container import WorkerContainer
from domain.protocol import PollResponse, WorkerInfo, frozen_float_map, frozen_str_map
from tests.unit.worker.fake_tools import ToolCalls, fake_tools
from tests.unit.worker.fakes import FakeClock, FakeController, FakeInstances, eventually

CONFIG = WorkerConfig(
    name="mac-mini-1",
    labels=frozen_str_map({"team": "ios"}),
    resources=frozen_float_map({"cpu": 8.0}),
    upstreams=(Upstream("http://controller.test", "pool-token"),),
)


def container_on_fakes(controller: FakeController, instances: FakeInstances) -> WorkerContainer:
    """A container whose controller client, instances and clock are fakes (no VM tools)."""
    container = WorkerContainer(config=CONFIG)
    container.clients.override(providers.Object((controller,)))
    container.instances.override(providers.Object(instances))
    container.vm_instances.override(providers.Object({}))
    container.clock.override(providers.Object(FakeClock()))
    return container


async def test_the_worker_built_by_the_container_registers_and_polls_its_fake_controller() -> None:
    controller, instances = FakeController(), FakeInstances()
    worker = container_on_fakes(controller, instances).worker()

    run = asyncio.create_task(worker.run())
    await eventually(lambda: controller.polls, "the first poll")
    worker.drain()
    controller.answer(PollResponse())
    await asyncio.wait_for(run, timeout=5)

    [(_, info)] = [call for call in controller.calls if call[0] == "register"]
    assert isinstance(info, WorkerInfo)
    assert info.labels["team"] == "ios"
    assert info.labels["name"] == "mac-mini-1"
    assert controller.polls[0].resources_in_use == {}


def test_without_overrides_each_upstream_gets_a_twirp_client_timed_into_the_metrics() -> None:
    clients = WorkerContainer(config=CONFIG).clients()

    assert len(clients) == 1
    assert isinstance(clients[0], MeteredControllerClient)


async def test_the_runner_gets_the_host_tools_provider_and_an_override_replaces_them() -> None:
    record = ToolCalls()
    container = container_on_fakes(FakeController(), FakeInstances())
    container.tools.override(providers.Object(fake_tools(record)))
    runner = container.runner()

    async with runner.tools.workspace("t1") as workspace:
        assert workspace == "/fake-workspace/t1"
    runner.tools.warn_unmaskable(2)
    assert record.calls == [("workspace", "t1")]
    assert record.unmaskable == [2]


async def test_without_overrides_the_host_tools_are_the_real_adapters() -> None:
    tools = WorkerContainer(config=CONFIG).tools()

    async with tools.workspace("t/1") as workspace:
        assert await asyncio.to_thread(os.path.isdir, workspace)
    assert not await asyncio.to_thread(os.path.exists, workspace)
    assert isinstance(tools.blobs("http://controller.test"), BlobTransfer)
    assert tools.archives is cache_archive


async def test_an_overridden_leftover_remover_is_the_one_the_container_hands_out() -> None:
    alive: list[bool] = []

    async def remove(worker_pid_alive: Callable[[int], bool]) -> list[str]:
        alive.append(worker_pid_alive(os.getpid()))
        return ["c1"]

    container = WorkerContainer(config=CONFIG)
    container.leftover_remover.override(providers.Object(remove))

    assert await container.leftover_remover()(lambda pid: pid == os.getpid()) == ["c1"]
    assert alive == [True]
