"""Command logs: masking across writes, 1 MiB chunks, bounded memory while undelivered."""

from __future__ import annotations

import asyncio

from app.worker.log_stream import CommandLog
from app.worker.outbox import Outbox
from app.worker.upstream import Upstream
from domain.protocol import TaskRef, WorkerInfo
from tests.unit.worker.fakes import FakeClock, FakeController, Sleeps, eventually


def rig() -> tuple[FakeController, Outbox]:
    controller = FakeController()
    upstream = Upstream(controller, WorkerInfo(), clock=FakeClock(), sleep=Sleeps())
    return controller, Outbox(upstream)


async def test_a_secret_split_across_two_writes_is_masked() -> None:
    controller, outbox = rig()
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(outbox, TaskRef("t"), "main", ("topsecret",), flush_interval=None)
    await log.write(b"a top")
    await log.flush()
    await log.write(b"secret b")
    await log.close()
    assert controller.logs("t", "main") == b"a HIDDEN-BY-CIRRUS-CI b"
    delivering.cancel()


async def test_chunks_never_exceed_the_limit() -> None:
    controller, outbox = rig()
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(outbox, TaskRef("t"), "main", chunk_size=1024, flush_interval=None)
    for _ in range(10):
        await log.write(b"x" * 700)
    await log.close()
    sizes = [len(chunk) for _, _, chunk in controller.log_chunks]
    assert max(sizes) <= 1024
    assert sum(sizes) == 7000
    delivering.cancel()


async def test_a_writer_waits_while_the_controller_is_unreachable() -> None:
    controller, outbox = rig()
    controller.down = True
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(
        outbox, TaskRef("t"), "main", chunk_size=1024, max_in_flight=2, flush_interval=None
    )
    writer = asyncio.create_task(log.write(b"y" * 10 * 1024))
    await eventually(lambda: outbox.pending == 2, "two chunks queued")
    for _ in range(20):
        await asyncio.sleep(0)
    assert not writer.done()
    assert outbox.pending == 2
    controller.down = False
    await asyncio.wait_for(writer, 5)
    await log.close()
    assert len(controller.logs("t", "main")) == 10 * 1024
    delivering.cancel()


async def test_output_is_flushed_periodically_while_it_flows() -> None:
    controller, outbox = rig()
    delivering = asyncio.create_task(outbox.run())
    ticks = Sleeps()
    log = CommandLog(outbox, TaskRef("t"), "main", flush_interval=1.0, sleep=ticks)
    await log.write(b"partial line")
    await eventually(lambda: controller.logs("t", "main") == b"partial line", "periodic flush")
    assert ticks.delays[0] == 1.0
    await log.close()
    delivering.cancel()
