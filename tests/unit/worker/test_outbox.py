"""The outbox: reports of one lane in order, lanes side by side, a bounded number at once."""

from __future__ import annotations

import asyncio

from app.worker.outbox import Outbox, ReportCall
from app.worker.upstream import Upstream
from domain.ports import ControllerClient
from domain.protocol import WorkerInfo
from tests.unit.worker.fakes import FakeClock, FakeController, Sleeps, eventually


def outbox(max_parallel: int = 4) -> Outbox:
    upstream = Upstream(FakeController(), WorkerInfo(), clock=FakeClock(), sleep=Sleeps())
    upstream.registered = True
    return Outbox(upstream, max_parallel=max_parallel)


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
