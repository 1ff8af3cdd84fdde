"""The standby VM with fake VM factories: hit, miss, replacement, backoff, modifiers, reporting."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from app.worker.poll_loop import Worker, WorkerSettings
from app.worker.retry import BackoffPolicy
from app.worker.standby import PrePull, StandbyKeeper
from app.worker.task_runner import TaskRunner
from app.worker.upstream import Upstream
from domain.errors import InstanceError
from domain.isolation import (
    Isolation,
    NoneIsolation,
    TartIsolation,
    VetuIsolation,
    instance_attributes,
)
from domain.modifiers import ModifierPool, ResourceModifier
from domain.policy import SecurityPolicy
from domain.protocol import (
    AgentAwareTask,
    PollResponse,
    StandbyParameters,
    Warmup,
    WorkerInfo,
    frozen_float_map,
)
from domain.standby import StandbyBackoff
from tests.unit.worker.fake_tools import fake_tools
from tests.unit.worker.fakes import (
    FakeClock,
    FakeController,
    FakeInstance,
    FakeInstances,
    Sleeps,
    eventually,
)

TART = TartIsolation(image="macos", user="admin", password="admin")
VETU = VetuIsolation(image="linux")
GPU = ResourceModifier(frozen_float_map({"gpu": 1.0}), ("--device", "gpu0"))


class FakeVm(FakeInstance):
    """A VM instance that records its warm-up."""

    def __init__(self, name: str, isolation: Isolation) -> None:
        super().__init__(name)
        self.name = name
        self.isolation = isolation
        self.warmups: list[tuple[str, float]] = []

    @property
    def attributes(self) -> Mapping[str, str | float]:
        return {"image": getattr(self.isolation, "image", ""), "instance_type": "tart"}

    async def warm_up(self, script: str, timeout_seconds: float) -> None:
        self.warmups.append((script, timeout_seconds))


class FakeVmFactory:
    """Creates ``FakeVm``s; ``gate`` holds creations open, ``error`` fails them."""

    def __init__(self, tool: str = "tart") -> None:
        self._tool = tool
        self.created: list[FakeVm] = []
        self.run_args: list[tuple[str, ...]] = []
        self.lazy: list[bool] = []
        self.pulls: list[str] = []
        self.error: str | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    @property
    def tool(self) -> str:
        return self._tool

    async def create(
        self,
        task_id: str,
        isolation: Isolation,
        *,
        run_args: Sequence[str] = (),
        ident: str | None = None,
        lazy_pull: bool = False,
        cli_env: Mapping[str, str] | None = None,
    ) -> FakeVm:
        await self.gate.wait()
        if self.error is not None:
            raise InstanceError(self.error)
        vm = FakeVm(f"cirrus-cli-{ident or task_id}-{len(self.created)}", isolation)
        self.created.append(vm)
        self.run_args.append(tuple(run_args))
        self.lazy.append(lazy_pull)
        return vm

    async def cleanup_orphans(self) -> list[str]:
        return []

    async def pull(self, image: str, cli_env: Mapping[str, str] | None = None) -> None:
        self.pulls.append(image)


class CountingMetrics:
    """Only the standby counters matter here."""

    def __init__(self) -> None:
        self.hits: list[dict[str, str | float]] = []
        self.misses: list[dict[str, str | float]] = []

    def task_accepted(self) -> None: ...
    def task_finished(self, isolation_kind: str, status: str, duration_seconds: float) -> None: ...
    def task_queue_to_start(self, seconds: float) -> None: ...
    def image_used(self, attributes: Mapping[str, str | float]) -> None: ...
    def controller_request(self, method: str, duration: float, error: str | None) -> None: ...
    def publish_gauges(self, gauges: object) -> None: ...

    def standby_hit(self, attributes: Mapping[str, str | float]) -> None:
        self.hits.append(dict(attributes))

    def standby_miss(self, attributes: Mapping[str, str | float]) -> None:
        self.misses.append(dict(attributes))


def params(isolation: Isolation = TART, **resources: float) -> StandbyParameters:
    return StandbyParameters(
        isolation=isolation,
        resources=frozen_float_map(resources),
        warmup=Warmup(script="xcrun simctl list", timeout_seconds=600),
    )


def task(task_id: str, isolation: Isolation) -> AgentAwareTask:
    return AgentAwareTask(task_id=task_id, client_secret="s", isolation=isolation)


class Keeper:
    """A ``StandbyKeeper`` wired to fakes."""

    def __init__(
        self,
        parameters: StandbyParameters | None = None,
        modifiers: Sequence[ResourceModifier] = (),
        pre_pull: PrePull | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.tart = FakeVmFactory("tart")
        self.vetu = FakeVmFactory("vetu")
        self.metrics = CountingMetrics()
        self.modifiers = ModifierPool(modifiers)
        self.keeper = StandbyKeeper(
            parameters or params(),
            vms={"tart": self.tart, "vetu": self.vetu},
            policy=SecurityPolicy(),
            modifiers=self.modifiers,
            clock=self.clock,
            metrics=self.metrics,
            pre_pull=pre_pull,
            backoff=StandbyBackoff(base_seconds=10.0, cap_seconds=80.0),
            random_fraction=lambda: 0.0,
        )

    async def warm(self) -> FakeVm:
        assert self.keeper.maybe_create(0, {"gpu": 1.0})
        await eventually(lambda: self.keeper.ready, "a warm standby")
        return self.tart.created[-1]


async def test_a_task_with_the_standbys_isolation_takes_the_warm_vm_and_its_modifier() -> None:
    rig = Keeper(params(gpu=1.0), modifiers=(GPU,))
    vm = await rig.warm()
    assert vm.name.startswith("cirrus-cli-standby-")
    assert vm.warmups == [("xcrun simctl list", 600.0)]
    assert rig.tart.run_args == [("--device", "gpu0")]
    taken = await rig.keeper.take(task("t1", TART))
    assert taken is vm
    assert rig.metrics.hits == [dict(vm.attributes)]
    assert rig.metrics.misses == []
    assert rig.modifiers.held() == {"t1": GPU}
    assert not vm.closed
    assert not rig.keeper.ready


async def test_a_different_task_misses_and_the_standby_is_destroyed() -> None:
    rig = Keeper()
    vm = await rig.warm()
    assert await rig.keeper.take(task("t1", VETU)) is None
    assert rig.metrics.misses == [dict(vm.attributes)]
    assert rig.metrics.hits == []
    await eventually(lambda: vm.closed, "the standby destroyed")
    await eventually(lambda: not rig.keeper.busy, "the destroy finished")
    assert rig.modifiers.held() == {}


async def test_a_miss_waits_for_the_standby_to_go_only_when_it_holds_a_modifier() -> None:
    rig = Keeper(params(gpu=1.0), modifiers=(GPU,))
    vm = await rig.warm()
    assert await rig.keeper.take(task("t1", NoneIsolation())) is None
    # The device is free by the time the task acquires one.
    assert vm.closed
    assert rig.modifiers.held() == {}
    assert rig.modifiers.acquire("t1", {"gpu": 1.0}) == GPU


async def test_a_task_equal_to_a_standby_still_warming_waits_for_it_and_takes_it() -> None:
    rig = Keeper()
    rig.tart.gate.clear()
    assert rig.keeper.maybe_create(0, {})
    taking = asyncio.create_task(rig.keeper.take(task("t1", TART)))
    await asyncio.sleep(0)
    assert not taking.done()
    rig.tart.gate.set()
    taken = await asyncio.wait_for(taking, 5)
    assert taken is rig.tart.created[0]
    assert len(rig.metrics.hits) == 1


async def test_a_different_task_abandons_a_standby_still_warming() -> None:
    rig = Keeper()
    rig.tart.gate.clear()
    assert rig.keeper.maybe_create(0, {})
    assert await asyncio.wait_for(rig.keeper.take(task("t1", VETU)), 5) is None
    await eventually(lambda: not rig.keeper.busy, "the creation abandoned")
    assert rig.tart.created == []
    assert not rig.keeper.ready
    # Abandoning a standby that is still warming is a miss, counted with its attributes.
    assert rig.metrics.misses == [instance_attributes(TART)]
    assert rig.metrics.hits == []


async def test_a_failing_standby_backs_off_exponentially_and_then_recovers() -> None:
    rig = Keeper()
    rig.tart.error = "tart command not found"
    delays = []
    for _ in range(4):
        assert rig.keeper.maybe_create(0, {})
        await eventually(lambda: not rig.keeper.busy, "the attempt failed")
        next_at = rig.keeper.backoff.next_attempt_at
        assert next_at is not None
        delays.append(next_at - rig.clock.monotonic())
        assert not rig.keeper.maybe_create(0, {})
        rig.clock.advance(delays[-1])
    assert delays == [10.0, 20.0, 40.0, 80.0]
    rig.tart.error = None
    await rig.warm()
    assert rig.keeper.backoff.failures == 0


async def test_no_standby_while_tasks_run_or_when_its_resources_do_not_fit() -> None:
    rig = Keeper(params(slots=2.0))
    assert not rig.keeper.maybe_create(1, {"slots": 4.0})
    assert not rig.keeper.maybe_create(0, {"slots": 1.0})
    assert rig.keeper.maybe_create(0, {"slots": 2.0})


async def test_pushed_parameters_that_differ_replace_the_standby() -> None:
    rig = Keeper()
    first = await rig.warm()
    rig.keeper.update(params())
    assert rig.keeper.ready  # equal parameters change nothing
    rig.keeper.update(params(VETU))
    await eventually(lambda: first.closed, "the old standby destroyed")
    await eventually(lambda: not rig.keeper.busy, "the destroy finished")
    assert rig.keeper.parameters == params(VETU)
    assert rig.keeper.maybe_create(0, {})
    await eventually(lambda: rig.keeper.ready, "the new standby")
    assert rig.vetu.created[0].isolation == VETU


@pytest.mark.parametrize("isolation", [NoneIsolation(), None])
async def test_pushed_parameters_other_than_tart_or_vetu_are_ignored(
    isolation: Isolation | None,
) -> None:
    rig = Keeper()
    vm = await rig.warm()
    pushed = StandbyParameters(isolation=isolation)  # type: ignore[arg-type]
    rig.keeper.update(pushed)
    assert rig.keeper.parameters == params()
    assert rig.keeper.ready
    assert not vm.closed


async def test_the_age_is_reported_in_whole_seconds_since_the_warm_up_finished() -> None:
    rig = Keeper()
    assert rig.keeper.information(rig.clock.now()) == ()
    await rig.warm()
    warmed_at = rig.clock.now()
    assert rig.keeper.since() == warmed_at
    rig.clock.advance(42.7)
    (info,) = rig.keeper.information(rig.clock.now())
    assert info.parameters == params()
    assert info.age_seconds == 42


async def test_pre_pull_pulls_every_image_when_due_and_the_standby_skips_its_own_pull() -> None:
    pre_pull = PrePull(images=("macos", "other"), check_interval_seconds=3600, jitter_seconds=60)
    rig = Keeper(pre_pull=pre_pull)
    vm = await rig.warm()
    assert rig.tart.pulls == ["macos", "other"]
    assert rig.tart.lazy == [True]
    await rig.keeper.take(task("t1", VETU))
    await eventually(lambda: vm.closed and not rig.keeper.busy, "the standby gone")
    await rig.warm()
    assert rig.tart.pulls == ["macos", "other"]  # not due again within the interval


async def test_close_destroys_the_standby_and_no_new_one_is_created() -> None:
    rig = Keeper()
    vm = await rig.warm()
    await rig.keeper.aclose()
    assert vm.closed
    assert not rig.keeper.maybe_create(0, {})


# --- in the worker --------------------------------------------------------------------------


class WorkerRig:
    """A worker with a standby keeper, a scripted controller and fake instances."""

    def __init__(self) -> None:
        self.keeper_rig = Keeper(params(gpu=1.0), modifiers=(GPU,))
        self.clock = self.keeper_rig.clock
        self.controller = FakeController()
        self.instances = FakeInstances()
        sleeps = Sleeps()
        upstream = Upstream(
            self.controller,
            WorkerInfo(labels={"name": "w1"}),
            clock=self.clock,
            policy=BackoffPolicy(),
            sleep=sleeps,
        )
        keeper = self.keeper_rig.keeper
        runner = TaskRunner(
            policy=SecurityPolicy(),
            instances=self.instances,
            modifiers=self.keeper_rig.modifiers,
            clock=self.clock,
            tools=fake_tools(),
            log_flush_interval=None,
            standby=keeper,
        )
        self.worker = Worker(
            WorkerSettings(name="w1", resources_total=frozen_float_map({"gpu": 1.0})),
            [upstream],
            runner,
            clock=self.clock,
            sleep=sleeps,
            standby=keeper,
        )


async def test_the_worker_keeps_polling_while_the_standby_warms_and_reports_it_when_warm() -> None:
    rig = WorkerRig()
    rig.keeper_rig.tart.gate.clear()  # the standby's boot hangs
    run = asyncio.create_task(rig.worker.run())
    for expected in (1, 2, 3):
        await eventually(lambda: len(rig.controller.polls) >= expected, "a poll")  # noqa: B023
        rig.controller.answer(PollResponse())
    assert all(not poll.available_standby_instances_information for poll in rig.controller.polls)
    rig.keeper_rig.tart.gate.set()
    await eventually(lambda: rig.keeper_rig.keeper.ready, "a warm standby")
    count = len(rig.controller.polls)
    rig.controller.answer(PollResponse())
    await eventually(lambda: len(rig.controller.polls) > count, "the next poll")
    assert len(rig.controller.polls[-1].available_standby_instances_information) == 1
    rig.controller.answer(PollResponse(shutdown=True))
    assert await asyncio.wait_for(run, 5) == 0
    assert rig.keeper_rig.tart.created[0].closed


async def test_every_task_releases_its_modifier_whether_it_hit_or_missed_the_standby() -> None:
    rig = WorkerRig()
    run = asyncio.create_task(rig.worker.run())
    await eventually(lambda: rig.keeper_rig.keeper.ready, "a warm standby")
    hit = AgentAwareTask("hit", "s", isolation=TART, resources_to_use=frozen_float_map({"gpu": 1}))
    rig.controller.answer(PollResponse(tasks_to_start=(hit,)))
    await eventually(lambda: ("task_stopped", "hit") in rig.controller.calls, "hit stopped")
    standby_vm = rig.keeper_rig.tart.created[0]
    assert standby_vm.closed
    assert rig.keeper_rig.metrics.hits == [dict(standby_vm.attributes)]
    await eventually(lambda: rig.keeper_rig.keeper.ready, "a second standby")
    assert set(rig.keeper_rig.modifiers.held()) == {"standby-2"}
    miss = AgentAwareTask("miss", "s", resources_to_use=frozen_float_map({"gpu": 1}))
    rig.controller.answer(PollResponse(tasks_to_start=(miss,)))
    await eventually(lambda: ("task_stopped", "miss") in rig.controller.calls, "miss stopped")
    assert rig.instances.modifiers["miss"] == GPU  # freed by the destroyed standby in time
    assert len(rig.keeper_rig.metrics.misses) == 1
    rig.controller.answer(PollResponse(shutdown=True))
    assert await asyncio.wait_for(run, 5) == 0
    assert rig.keeper_rig.modifiers.held() == {}
    assert all(vm.closed for vm in rig.keeper_rig.tart.created)
