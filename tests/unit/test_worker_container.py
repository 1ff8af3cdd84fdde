"""The worker's composition root builds a worker on fakes of its controller and instances."""

from __future__ import annotations

import asyncio

from dependency_injector import providers

from adapters.config.effective import Upstream, WorkerConfig
from adapters.telemetry.controller_calls import MeteredControllerClient
from app.worker.container import WorkerContainer
from domain.protocol import PollResponse, WorkerInfo, frozen_float_map, frozen_str_map
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
