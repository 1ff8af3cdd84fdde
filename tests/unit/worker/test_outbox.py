"""The outbox: reports of one lane in order, lanes side by side, a bounded number at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.worker.outbox import MAX_MERGED_UPDATES, Outbox, ReportCall
from app.worker.upstream import Upstream
from domain.ports import ControllerClient
from domain.protocol import CommandResult, CommandStatus, TaskRef, WorkerInfo
from tests.unit.worker.fakes import FakeClock, FakeController, Sleeps, eventually


def outbox(
    max_parallel: int = 4, controller: FakeController | None = None, linger: float = 0.0
) -> Outbox:
    client = controller if controller is not None else FakeController()
    upstream = Upstream(client, WorkerInfo(), clock=FakeClock(), sleep=Sleeps())
    upstream.registered = True
    return Outbox(upstream, max_parallel=max_parallel, linger=linger)


class Gates:
    """Report calls that record when they begin and end only once their gate opens."""

    def __init__(self) -> None:
        self.begun: list[str] = []
        self.ended: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    def call(self, name: str) -> ReportCall:
        gate = self.gates[name] = asyncio.Event()

        async def deliver(_client: ControllerClient) -> object:
            self.begun.append(name)
            await gate.wait()
            self.ended.append(name)
            return None

        return deliver

    def open(self, name: str) -> None:
        self.gates[name].set()


async def test_reports_of_one_lane_leave_one_at_a_time_in_order() -> None:
    box, gates = outbox(), Gates()
    delivering = asyncio.create_task(box.run())
    first = box.send("a1", gates.call("a1"), "a")
    second = box.send("a2", gates.call("a2"), "a")
    await eventually(lambda: gates.begun == ["a1"], "the first report to leave")
    for _ in range(10):
        await asyncio.sleep(0)
    assert gates.begun == ["a1"]
    gates.open("a1")
    assert await first
    await eventually(lambda: gates.begun == ["a1", "a2"], "the second report to leave")
    gates.open("a2")
    assert await second
    await asyncio.wait_for(box.drained(), 5)
    assert box.pending == 0
    delivering.cancel()


async def test_a_lane_does_not_wait_behind_another_lanes_undelivered_report() -> None:
    box, gates = outbox(), Gates()
    delivering = asyncio.create_task(box.run())
    box.send("a1", gates.call("a1"), "a")
    later = box.send("b1", gates.call("b1"), "b")
    await eventually(lambda: sorted(gates.begun) == ["a1", "b1"], "both lanes to deliver")
    gates.open("b1")
    assert await later
    assert gates.ended == ["b1"]
    assert box.pending == 1
    gates.open("a1")
    await asyncio.wait_for(box.drained(), 5)
    delivering.cancel()


async def test_no_more_lanes_than_the_limit_deliver_at_once() -> None:
    box, gates = outbox(max_parallel=2), Gates()
    delivering = asyncio.create_task(box.run())
    for lane in "abc":
        box.send(lane, gates.call(lane), lane)
    await eventually(lambda: gates.begun == ["a", "b"], "two lanes to deliver")
    for _ in range(10):
        await asyncio.sleep(0)
    assert gates.begun == ["a", "b"]
    gates.open("a")
    await eventually(lambda: gates.begun == ["a", "b", "c"], "the third lane to get its turn")
    gates.open("b")
    gates.open("c")
    await asyncio.wait_for(box.drained(), 5)
    delivering.cancel()


async def test_reports_left_when_delivery_stops_go_out_once_it_runs_again() -> None:
    box, gates = outbox(), Gates()
    delivering = asyncio.create_task(box.run())
    box.send("a1", gates.call("a1"), "a")
    box.send("a2", gates.call("a2"), "a")
    await eventually(lambda: gates.begun == ["a1"], "the first report to leave")
    delivering.cancel()
    await asyncio.gather(delivering, return_exceptions=True)
    assert box.pending == 2
    gates.open("a1")
    gates.open("a2")
    delivering = asyncio.create_task(box.run())
    await asyncio.wait_for(box.drained(), 5)
    assert gates.ended == ["a1", "a2"]
    delivering.cancel()


class UpdateCalls(FakeController):
    """A fake controller that also records each ``ReportCommandUpdates`` call as a whole."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.update_calls: list[list[str]] = []

    async def report_command_updates(self, task: TaskRef, updates: Sequence[CommandResult]) -> None:
        self.update_calls.append([f"{u.name} {u.status.name}" for u in updates])
        await super().report_command_updates(task, updates)

    @staticmethod
    def finished_call(ref: TaskRef) -> ReportCall:
        """A ``ReportAgentFinished`` of ``ref`` with no results."""

        async def finished(client: ControllerClient) -> object:
            await client.report_agent_finished(ref, ())
            return None

        return finished


async def test_command_updates_queued_back_to_back_leave_as_one_call_in_order() -> None:
    controller, gates = UpdateCalls(), Gates()
    box = outbox(controller=controller)
    ref, other = TaskRef("t1", "secret"), TaskRef("t2", "secret")
    delivering = asyncio.create_task(box.run())
    box.send("first", gates.call("first"), "t1")
    await eventually(lambda: gates.begun == ["first"], "the first report to leave")
    merged = [
        box.send_command_updates(ref, [CommandResult("a", CommandStatus.EXECUTING)]),
        box.send_command_updates(ref, [CommandResult("a", CommandStatus.COMPLETED)]),
        box.send_command_updates(ref, [CommandResult("b", CommandStatus.SKIPPED)]),
    ]
    box.send("between", gates.call("between"), "t1")
    alone = box.send_command_updates(ref, [CommandResult("c", CommandStatus.SKIPPED)])
    elsewhere = box.send_command_updates(other, [CommandResult("x", CommandStatus.EXECUTING)])
    gates.open("first")
    await eventually(lambda: gates.begun == ["first", "between"], "the report in between")
    gates.open("between")
    await asyncio.wait_for(box.drained(), 5)
    assert all([await future for future in [*merged, alone, elsewhere]])
    assert sorted(controller.update_calls) == [
        ["a EXECUTING", "a COMPLETED", "b SKIPPED"],
        ["c SKIPPED"],
        ["x EXECUTING"],
    ]
    assert controller.update_calls.index(["a EXECUTING", "a COMPLETED", "b SKIPPED"]) < (
        controller.update_calls.index(["c SKIPPED"])
    )
    delivering.cancel()


async def test_a_merged_call_carries_no_more_than_the_limit_of_updates() -> None:
    controller, gates = UpdateCalls(), Gates()
    box = outbox(controller=controller)
    ref = TaskRef("t1", "secret")
    delivering = asyncio.create_task(box.run())
    box.send("first", gates.call("first"), "t1")
    await eventually(lambda: gates.begun == ["first"], "the first report to leave")
    for number in range(MAX_MERGED_UPDATES + 1):
        box.send_command_updates(ref, [CommandResult(f"c{number}", CommandStatus.SKIPPED)])
    gates.open("first")
    await asyncio.wait_for(box.drained(), 5)
    assert [len(call) for call in controller.update_calls] == [MAX_MERGED_UPDATES, 1]
    delivering.cancel()


async def _spin(turns: int = 20) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_a_quick_commands_updates_linger_and_leave_as_one_call_before_what_follows() -> None:
    controller = UpdateCalls()
    box = outbox(controller=controller, linger=60.0)
    ref = TaskRef("t1", "secret")
    delivering = asyncio.create_task(box.run())
    box.send_command_updates(ref, [CommandResult("main", CommandStatus.EXECUTING)])
    await _spin()
    assert controller.update_calls == []  # lingering for the command's end
    box.send_command_updates(ref, [CommandResult("main", CommandStatus.COMPLETED)])
    await _spin()
    assert controller.update_calls == []
    # Another kind of report behind the updates ends the linger at once (not after 60 s).
    finished = box.send("finished", UpdateCalls.finished_call(ref), "t1")
    assert await asyncio.wait_for(finished, 5)
    assert controller.update_calls == [["main EXECUTING", "main COMPLETED"]]
    assert controller.names() == ["update", "update", "finished"]
    delivering.cancel()


async def test_a_lone_update_leaves_once_the_linger_ends() -> None:
    controller = UpdateCalls()
    box = outbox(controller=controller, linger=0.5)
    delivering = asyncio.create_task(box.run())
    update = box.send_command_updates(TaskRef("t1"), [CommandResult("a", CommandStatus.EXECUTING)])
    await _spin()
    assert not update.done()
    assert await asyncio.wait_for(update, 5)
    assert controller.update_calls == [["a EXECUTING"]]
    await asyncio.wait_for(box.drained(), 5)
    delivering.cancel()


async def test_a_lingering_lane_holds_no_delivery_place() -> None:
    controller = UpdateCalls()
    box = outbox(max_parallel=1, controller=controller, linger=60.0)
    delivering = asyncio.create_task(box.run())
    ref = TaskRef("t1")
    box.send_command_updates(ref, [CommandResult("a", CommandStatus.EXECUTING)])
    await _spin()
    other = box.send("other", UpdateCalls.finished_call(TaskRef("t2")), "t2")
    assert await asyncio.wait_for(other, 5)
    assert controller.update_calls == []
    box.send("finished", UpdateCalls.finished_call(ref), "t1")
    await asyncio.wait_for(box.drained(), 5)
    assert controller.update_calls == [["a EXECUTING"]]
    delivering.cancel()
