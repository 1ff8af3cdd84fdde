"""When the worker polls: at once after work changed or a held poll, else once per interval."""

from __future__ import annotations

import asyncio

from app.worker.poll_loop import HELD_POLL_SECONDS
from domain.protocol import CommandsResponse, PollResponse
from tests.unit.worker.fakes import ManualTimers, eventually
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
