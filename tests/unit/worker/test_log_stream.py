"""Command logs: masking across writes, 1 MiB chunks, bounded memory while undelivered."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.logging.masking import secret_registry
from app.worker.log_stream import CommandLog
from app.worker.outbox import Outbox
from app.worker.upstream import Upstream
from domain.errors import TransientControllerError
from domain.protocol import CommandResult, CommandStatus, TaskRef, WorkerInfo
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
    await asyncio.wait_for(outbox.drained(), 5)
    assert controller.logs("t", "main") == b"a HIDDEN-BY-CIRRUS-CI b"
    delivering.cancel()


async def test_chunks_never_exceed_the_limit() -> None:
    controller, outbox = rig()
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(outbox, TaskRef("t"), "main", chunk_size=1024, flush_interval=None)
    for _ in range(10):
        await log.write(b"x" * 700)
    await log.close()
    await asyncio.wait_for(outbox.drained(), 5)
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
    await asyncio.wait_for(outbox.drained(), 5)
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


async def test_output_held_by_a_waiting_flush_when_the_command_ends_arrives_once_in_order() -> None:
    controller, outbox = rig()
    controller.down = True
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(outbox, TaskRef("t"), "main", max_in_flight=1, sleep=Sleeps())
    await log.write(b"one\n")
    await eventually(lambda: outbox.pending == 1, "the first chunk queued")
    await log.write(b"two\n")
    for _ in range(50):  # the flusher now waits for the slot the undelivered chunk holds
        await asyncio.sleep(0)
    await log.write(b"three\n")
    closing = asyncio.create_task(log.close())
    for _ in range(20):
        await asyncio.sleep(0)
    controller.down = False
    await asyncio.wait_for(closing, 5)
    assert controller.logs("t", "main") == b"one\ntwo\nthree\n"
    delivering.cancel()


async def test_a_secret_too_short_to_mask_is_left_in_the_output_and_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_registry().clear()
    controller, outbox = rig()
    delivering = asyncio.create_task(outbox.run())
    try:
        with caplog.at_level(logging.WARNING):
            for name in ("first", "second"):
                log = CommandLog(
                    outbox,
                    TaskRef("t"),
                    name,
                    ("ex", "hunter2"),
                    flush_interval=None,
                    warn_unmaskable=secret_registry().warn_unmaskable,
                )
                await log.write(b"exit hunter2\n")
                await log.close()
        await asyncio.wait_for(outbox.drained(), 5)
        assert controller.logs("t", "first") == b"exit HIDDEN-BY-CIRRUS-CI\n"
        warned = [r.getMessage() for r in caplog.records if "cannot be masked" in r.getMessage()]
        assert len(warned) == 1
    finally:
        delivering.cancel()
        secret_registry().clear()


async def test_each_chunk_carries_its_offset_and_a_retried_chunk_carries_the_same() -> None:
    controller, outbox = rig()
    controller.failures["append_logs"] = [
        TransientControllerError("unavailable", "the database is away")
    ]
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(outbox, TaskRef("t"), "main", chunk_size=1000, flush_interval=None)
    await log.write(b"a" * 1000 + b"b" * 1000 + b"c" * 500)
    await log.close()
    await asyncio.wait_for(outbox.drained(), 5)
    assert controller.log_offsets == [("main", 0), ("main", 0), ("main", 1000), ("main", 2000)]
    assert controller.logs("t", "main") == b"a" * 1000 + b"b" * 1000 + b"c" * 500
    delivering.cancel()


async def test_offsets_count_the_masked_bytes_that_were_sent() -> None:
    controller, outbox = rig()
    delivering = asyncio.create_task(outbox.run())
    log = CommandLog(outbox, TaskRef("t"), "main", ("topsecret",), flush_interval=None)
    await log.write(b"topsecret\n")
    await log.flush()
    await log.write(b"next\n")
    await log.close()
    await asyncio.wait_for(outbox.drained(), 5)
    first = len(b"HIDDEN-BY-CIRRUS-CI\n")
    assert controller.log_offsets == [("main", 0), ("main", first)]
    delivering.cancel()


class GatedLogs(FakeController):
    """A fake controller whose ``AppendLogs`` answers only once ``gate`` is set."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.gate = asyncio.Event()

    async def append_logs(
        self, task: TaskRef, command_name: str, data: bytes, offset: int | None = None
    ) -> int:
        await self.gate.wait()
        return await super().append_logs(task, command_name, data, offset)


async def test_close_returns_before_delivery_and_the_final_update_still_follows_the_log() -> None:
    controller = GatedLogs()
    upstream = Upstream(controller, WorkerInfo(), clock=FakeClock(), sleep=Sleeps())
    upstream.registered = True
    outbox = Outbox(upstream, linger=0.0)
    delivering = asyncio.create_task(outbox.run())
    ref = TaskRef("t")
    log = CommandLog(outbox, ref, "clone", flush_interval=None)
    await log.line("no source to clone")
    await asyncio.wait_for(log.close(), 5)  # the chunk is still on its way
    assert controller.log_chunks == []
    outbox.send_command_updates(ref, [CommandResult("clone", CommandStatus.COMPLETED)])
    outbox.send_command_updates(ref, [CommandResult("main", CommandStatus.EXECUTING)])
    controller.gate.set()
    await asyncio.wait_for(outbox.drained(), 5)
    assert controller.calls == [
        ("logs", ("t", "clone", len(b"no source to clone\n"))),
        ("update", ("t", "clone", "COMPLETED")),
        ("update", ("t", "main", "EXECUTING")),
    ]
    delivering.cancel()
