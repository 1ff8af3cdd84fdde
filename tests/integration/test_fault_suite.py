"""The fault suite (issue 14): a real controller and a real host worker while a task streams
numbered lines, through an outage of the controller or of its database.

Each case checks that every line reaches the controller exactly once and in order (read through
the API once the build ended), and that the healthy tasks and their build end COMPLETED. One
task ends during the fault; the other streams on past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.fault_stack import (
    FaultStack,
    StoppablePostgres,
    private_postgres,
    stream_problems,
    streaming_build,
)

pytestmark = pytest.mark.integration

SETTLE = 3.0
"""The ``during`` task streams this much longer than half the fault: the fault starts once its
first line is in, a second or two after it started, so it ends in the middle of the fault."""

TAIL = 10.0
"""The ``across`` task streams this much longer than the fault: past the recovery."""

PICKUP_TIMEOUT = 60.0
"""How long the worker may take to start a task and get its first line in."""

RECOVERY_TIMEOUT = 90.0
"""How long, after its last line, the task may take to be reported: the worker's backoff (at
most 15 s), a hung call's timeout, the restart."""

WORKER_BACK_AFTER = 12.0
"""Seconds after the controller's restart that the worker calls again in the long outage: after
the controller's first liveness sweep (it sweeps every poll interval, 10 s), within the window."""


def _stack(tmp_path: Path, database: str) -> Iterator[FaultStack]:
    stack = FaultStack.start(tmp_path, database)
    try:
        yield stack
    finally:
        complaints = stack.stop()
        assert not complaints, "\n".join(complaints)


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[FaultStack]:
    """A controller on a SQLite file and a worker polling it."""
    yield from _stack(tmp_path, f"sqlite:///{tmp_path / 'controller.db'}")


@pytest.fixture
def postgres() -> Iterator[StoppablePostgres]:
    """A private PostgreSQL cluster this test may stop."""
    yield from private_postgres()


@pytest.fixture
def postgres_stack(tmp_path: Path, postgres: StoppablePostgres) -> Iterator[FaultStack]:
    """A controller on a database of the private cluster and a worker polling it."""
    yield from _stack(tmp_path, postgres.create_database())


def stream_through(stack: FaultStack, fault_seconds: float, fault: Callable[[], None]) -> None:
    """Run the streaming tasks through ``fault`` (lasting ``fault_seconds``); check their end."""
    config = streaming_build(fault_seconds / 2 + SETTLE, fault_seconds + TAIL)
    build = stack.api("POST", "/api/v1/builds", json={"config": config})
    tasks = {task["name"]: task["id"] for task in build["tasks"]}
    for name, task_id in tasks.items():
        stack.wait_for_line(task_id, name, PICKUP_TIMEOUT)
    fault()
    final = stack.final_build(build["id"], fault_seconds + TAIL + RECOVERY_TIMEOUT)
    failed = [
        (task["name"], task["status"], task.get("failureMessage", ""))
        for task in (stack.api("GET", f"/api/v1/tasks/{task_id}") for task_id in tasks.values())
        if task["status"] != "COMPLETED"
    ]
    problems = [
        problem
        for name, task_id in tasks.items()
        if (problem := stream_problems(stack.log(task_id, name), name))
    ]
    assert (final["status"], failed, problems) == ("COMPLETED", [], []), final


def _wait_out(started: float, seconds: float) -> None:
    # The fault itself: it lasts this long whatever the test does meanwhile.
    time.sleep(max(0.0, started + seconds - time.monotonic()))


def test_a_task_streams_through_a_30_s_controller_stop_without_losing_a_line(
    sqlite_stack: FaultStack,
) -> None:
    stack = sqlite_stack

    def fault() -> None:
        stopped = time.monotonic()
        assert stack.controller.terminate() == 0, stack.controller.stderr()
        _wait_out(stopped, 30)
        stack.restart_controller()

    stream_through(stack, 30, fault)


def test_a_task_streams_through_a_90_s_controller_stop_and_a_worker_back_after_the_first_sweep(
    sqlite_stack: FaultStack,
) -> None:
    # 90 s is beyond the default 60 s liveness window. The worker comes back only after the
    # restarted controller's first sweep: it keeps its task, its silence counting from the restart.
    stack = sqlite_stack

    def fault() -> None:
        stopped = time.monotonic()
        assert stack.controller.terminate() == 0, stack.controller.stderr()
        _wait_out(stopped, 90)
        stack.freeze(stack.worker)
        stack.restart_controller()
        _wait_out(time.monotonic(), WORKER_BACK_AFTER)
        stack.thaw()

    stream_through(stack, 90 + WORKER_BACK_AFTER, fault)


def test_a_task_streams_through_a_30_s_controller_freeze_without_losing_a_line(
    sqlite_stack: FaultStack,
) -> None:
    def fault() -> None:
        frozen = time.monotonic()
        sqlite_stack.freeze(sqlite_stack.controller)
        _wait_out(frozen, 30)
        sqlite_stack.thaw()

    stream_through(sqlite_stack, 30, fault)


def test_a_task_streams_through_a_30_s_postgresql_stop_without_losing_or_repeating_a_line(
    postgres: StoppablePostgres, postgres_stack: FaultStack
) -> None:
    def fault() -> None:
        stopped = time.monotonic()
        postgres.halt()
        _wait_out(stopped, 30)
        postgres.resume()

    stream_through(postgres_stack, 30, fault)


def test_a_task_streams_through_a_controller_kill_9_and_restart_without_losing_a_line(
    sqlite_stack: FaultStack,
) -> None:
    def fault() -> None:
        sqlite_stack.controller.process.kill()
        sqlite_stack.controller.process.wait(timeout=30)
        sqlite_stack.restart_controller()

    stream_through(sqlite_stack, 0, fault)
