"""When the worker polls: at once after work changed or a held poll, else once per interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from app.worker.poll_loop import HELD_POLL_SECONDS, STARTED_HEAD_START_SECONDS
from domain.modifiers import ResourceModifier
from domain.ports import Instance
from domain.protocol import AgentAwareTask, CommandsResponse, PollRequest, PollResponse
from tests.unit.worker.fakes import FakeInstances, ManualTimers, eventually
from tests.unit.worker.test_worker import Rig, finish, script, task

INTERVAL = 10


async def polls_reach(rig: Rig, count: int) -> None:
    await eventually(lambda: len(rig.controller.polls) >= count, f"poll number {count}")


async def test_polls_answered_at_once_are_spaced_by_the_whole_interval() -> None:
    rig = Rig()
    run = rig.start()
    for number in range(1, 4):
        await polls_reach(rig, number)
        rig.controller.answer(PollResponse(poll_interval_in_seconds=INTERVAL))
    await polls_reach(rig, 4)
    assert rig.sleeps.delays == [INTERVAL, INTERVAL, INTERVAL]
    assert await finish(rig, run) == 0


async def test_the_wait_after_a_quick_poll_is_the_interval_minus_the_time_it_took() -> None:
    rig = Rig()
    run = rig.start()
    await polls_reach(rig, 1)
    rig.clock.advance(0.25)
    rig.controller.answer(PollResponse(poll_interval_in_seconds=INTERVAL))
    await polls_reach(rig, 2)
    assert rig.sleeps.delays == [INTERVAL - 0.25]
    assert await finish(rig, run) == 0


async def test_an_empty_poll_the_controller_held_open_is_followed_by_the_next_at_once() -> None:
    timers = ManualTimers()
    rig = Rig(worker_sleep=timers)
    run = rig.start()
    await polls_reach(rig, 1)
    rig.clock.advance(HELD_POLL_SECONDS + 2)
    rig.controller.answer(PollResponse(poll_interval_in_seconds=INTERVAL))
    await polls_reach(rig, 2)
    # Held for less than the interval, yet no remainder of the interval is waited either.
    assert timers.requested == []
    assert await finish(rig, run) == 0


async def test_a_poll_that_started_a_task_is_followed_by_the_next_at_once() -> None:
    timers = ManualTimers()
    rig = Rig(worker_sleep=timers)
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    await polls_reach(rig, 1)
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"cpu": 1}),)))
    await polls_reach(rig, 2)
    assert timers.requested == []
    assert rig.controller.polls[1].running_tasks == ("t1",)
    rig.worker.cancel_all()
    assert await finish(rig, run) == 0


async def test_a_task_that_stopped_during_the_wait_ends_the_wait() -> None:
    timers = ManualTimers()
    rig = Rig(worker_sleep=timers)
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"cpu": 1}),)))
    await polls_reach(rig, 2)
    await eventually(lambda: rig.instances.created["t1"].blocking.is_set(), "t1 running")
    rig.controller.answer(PollResponse(poll_interval_in_seconds=INTERVAL))
    await eventually(lambda: timers.requested == [INTERVAL], "the wait for the next poll")
    rig.worker.tasks["t1"].cancel()
    await polls_reach(rig, 3)
    # TaskStopped went out first, so the new poll no longer lists the task.
    assert rig.controller.names()[-1] == "task_stopped"
    assert rig.controller.polls[2].running_tasks == ()
    assert timers.requested == [INTERVAL]
    assert await finish(rig, run) == 0


async def test_a_task_that_stopped_during_a_poll_makes_the_next_poll_come_at_once() -> None:
    timers = ManualTimers()
    rig = Rig(worker_sleep=timers)
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "true"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await polls_reach(rig, 2)
    await eventually(lambda: ("task_stopped", "t1") in rig.controller.calls, "TaskStopped")
    rig.controller.answer(PollResponse(poll_interval_in_seconds=INTERVAL))
    await polls_reach(rig, 3)
    assert timers.requested == []
    # Only once: the poll after that waits the interval again.
    rig.controller.answer(PollResponse(poll_interval_in_seconds=INTERVAL))
    await eventually(lambda: timers.requested == [INTERVAL], "the wait for the next poll")
    await asyncio.sleep(0.01)
    assert len(rig.controller.polls) == 3
    timers.fire()
    assert await finish(rig, run) == 0


async def test_a_refused_task_does_not_make_a_draining_worker_poll_again_at_once() -> None:
    timers = ManualTimers()
    rig = Rig(worker_sleep=timers)
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1"),)))
    await eventually(lambda: "t1" in rig.instances.created, "t1 running")
    await polls_reach(rig, 2)
    rig.worker.drain()
    rig.controller.answer(
        PollResponse(tasks_to_start=(task("t2"),), poll_interval_in_seconds=INTERVAL)
    )
    await eventually(lambda: ("task_stopped", "t2") in rig.controller.calls, "t2 refused")
    await eventually(lambda: "t2" not in rig.worker.tasks, "t2 forgotten")
    await eventually(lambda: timers.requested == [INTERVAL], "the wait for the next poll")
    # A few turns of the loop in which a wrongly woken wait would poll.
    await asyncio.sleep(0.01)
    assert len(rig.controller.polls) == 2
    rig.worker.cancel_all()
    assert await asyncio.wait_for(run, 5) == 0


def record_polls_in_calls(rig: Rig) -> None:
    """Make the fake controller list each poll among its calls, in order."""
    poll = rig.controller.poll

    async def recorded(request: PollRequest, timeout_seconds: float) -> PollResponse:
        rig.controller.calls.append(("poll", None))
        return await poll(request, timeout_seconds)

    setattr(rig.controller, "poll", recorded)  # noqa: B010 (a method of this fake, replaced)


async def test_the_poll_after_a_task_was_handed_out_leaves_after_its_task_started() -> None:
    rig = Rig(worker_sleep=ManualTimers())
    record_polls_in_calls(rig)
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "block"),))
    run = rig.start()
    await polls_reach(rig, 1)
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"cpu": 1}),)))
    try:
        await polls_reach(rig, 2)
        # The controller serves calls in order: the task's pickup does not wait for a poll.
        names = rig.controller.names()
        second_poll = names.index("poll", names.index("poll") + 1)
        assert names.index("task_started") < second_poll
    finally:
        rig.worker.cancel_all()
    assert await finish(rig, run) == 0


class GatedInstances(FakeInstances):
    """Instances whose creation waits until ``gate`` is set (a slow VM clone, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def create(
        self,
        task: AgentAwareTask,
        modifier: ResourceModifier | None,
        cli_env: Mapping[str, str] | None = None,
    ) -> Instance:
        await self.gate.wait()
        return await super().create(task, modifier, cli_env)


async def test_a_task_slow_to_start_delays_the_next_poll_only_briefly() -> None:
    rig = Rig(worker_sleep=ManualTimers())
    record_polls_in_calls(rig)
    instances = GatedInstances()
    rig.worker.runner.instances = instances
    rig.controller.commands["t1"] = CommandsResponse(commands=(script("a", "done"),))
    run = rig.start()
    await polls_reach(rig, 1)
    rig.controller.answer(PollResponse(tasks_to_start=(task("t1", {"cpu": 1}),)))
    began = time.monotonic()
    try:
        await polls_reach(rig, 2)
        assert time.monotonic() - began < STARTED_HEAD_START_SECONDS + 1.0
        assert "task_started" not in rig.controller.names()  # it did not wait for the instance
        instances.gate.set()
        await eventually(lambda: "task_started" in rig.controller.names(), "t1 started")
    finally:
        instances.gate.set()
        rig.worker.cancel_all()
    assert await finish(rig, run) == 0
