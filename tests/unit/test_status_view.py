"""The worker's status view renders exactly what a ``WorkerSnapshot`` holds."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from app.status_view import (
    STATUS_LOGGER,
    StatusView,
    format_elapsed,
    format_resources,
    render_status,
    show_until_cancelled,
    status_lines,
    watch_pauses,
)
from app.worker.state import TaskSnapshot, UpstreamSnapshot, WorkerSnapshot
from domain.errors import ControllerError
from domain.protocol import RunningTasksStatus, frozen_float_map

NOW = 1_700_000_000.0


def busy_snapshot() -> WorkerSnapshot:
    return WorkerSnapshot(
        name="mac-mini-7",
        upstreams=(
            UpstreamSnapshot(
                endpoint="https://ci.example.com",
                registered=True,
                last_poll_ok=True,
                last_poll_time=NOW - 3,
                poll_interval_seconds=10,
            ),
            UpstreamSnapshot(
                endpoint="http://127.0.0.1:8080",
                registered=False,
                last_poll_ok=False,
                last_error="unavailable: connection refused",
                pending_reports=4,
            ),
        ),
        tasks=(
            TaskSnapshot(
                task_id="task-123",
                upstream="https://ci.example.com",
                isolation_kind="tart",
                started_at=NOW - 65,
                resources=frozen_float_map({"tart-vms": 1}),
                phase="running commands",
            ),
            TaskSnapshot(
                task_id="task-456",
                upstream="https://ci.example.com",
                isolation_kind="none",
                started_at=NOW - 7300,
                phase="cleaning up",
                cancelling=True,
            ),
        ),
        resources_total=frozen_float_map({"tart-vms": 2, "gpu": 0.5}),
        resources_in_use=frozen_float_map({"tart-vms": 1}),
        resources_free=frozen_float_map({"tart-vms": 1, "gpu": 0.5}),
        draining=True,
    )


def rendered(snapshot: WorkerSnapshot) -> str:
    console = Console(record=True, file=io.StringIO(), width=160, color_system=None)
    console.print(render_status(snapshot, NOW))
    return console.export_text()


def row(text: str, key: str) -> list[str]:
    """The cells of the table row that contains ``key``."""
    line = next(line for line in text.splitlines() if key in line)
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def test_the_view_shows_controllers_with_registration_and_poll_state() -> None:
    text = rendered(busy_snapshot())

    assert "mac-mini-7 (draining)" in text
    assert row(text, "https://ci.example.com") == [
        "https://ci.example.com",
        "yes",
        "ok 3s ago",
        "10s",
        "0",
    ]
    assert row(text, "127.0.0.1:8080") == [
        "http://127.0.0.1:8080",
        "no",
        "failing: unavailable: connection refused",
        "10s",
        "4",
    ]


def test_the_view_shows_running_tasks_with_isolation_elapsed_time_and_resources() -> None:
    text = rendered(busy_snapshot())

    assert row(text, "task-123") == ["task-123", "tart", "running commands", "1m05s", "tart-vms=1"]
    assert row(text, "task-456") == [
        "task-456",
        "none",
        "cleaning up (cancelling)",
        "2h01m",
        "-",
    ]


def test_the_view_shows_total_used_and_free_resources() -> None:
    text = rendered(busy_snapshot())

    assert "gpu=0.5 tart-vms=2" in text
    free_line = next(line for line in text.splitlines() if line.strip().startswith("free"))
    assert "gpu=0.5 tart-vms=1" in free_line


def test_an_idle_unregistered_worker_says_so() -> None:
    idle = WorkerSnapshot(
        name="w", upstreams=(UpstreamSnapshot(endpoint="http://127.0.0.1:9"),), ephemeral=True
    )
    text = rendered(idle)

    assert "w (running, ephemeral)" in text
    assert row(text, "127.0.0.1:9")[1:3] == ["no", "not polled yet"]
    assert "No running tasks" in text
    assert "Running tasks" not in text
    assert not any(line.strip().startswith("│ none") for line in text.splitlines())
    assert status_lines(idle, NOW)[0].startswith("worker w running, ephemeral; registered: no")


def test_plain_lines_carry_the_same_facts() -> None:
    lines = status_lines(busy_snapshot(), NOW)

    assert lines[0] == (
        "worker mac-mini-7 draining; registered: no; free: gpu=0.5 tart-vms=1; in use: tart-vms=1"
    )
    assert lines[1] == (
        "controller https://ci.example.com: registered, ok 3s ago, pending reports 0"
    )
    assert "task task-123 (tart): running commands, 1m05s, resources tart-vms=1" in lines


def test_off_a_terminal_the_view_logs_lines_only_when_something_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = iter([NOW, NOW + 1, NOW + 2])
    view = StatusView(console=Console(file=io.StringIO()), clock=lambda: next(clock))
    caplog.set_level(logging.INFO, logger=STATUS_LOGGER)
    snapshot = busy_snapshot()

    with view:
        assert not view.live
        view.show(snapshot)
        logged_once = len(caplog.records)
        view.show(snapshot)  # only the ages changed
        assert len(caplog.records) == logged_once
        view.show(WorkerSnapshot(name="mac-mini-7"))

    assert logged_once == 5
    assert len(caplog.records) == 6
    assert caplog.records[-1].getMessage().startswith("worker mac-mini-7 running")


def test_on_a_terminal_the_view_draws_the_snapshot_live() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    view = StatusView(console=console, clock=lambda: NOW)

    with view:
        assert view.live
        view.show(busy_snapshot())

    assert "task-123" in out.getvalue()
    assert "1m05s" in out.getvalue()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"), (-5, "0s")],
)
def test_elapsed_times_read_naturally(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


@given(st.dictionaries(st.from_regex(r"[a-z][a-z-]{0,8}", fullmatch=True), st.integers(0, 99)))
def test_whole_resource_amounts_print_without_a_fraction(amounts: dict[str, int]) -> None:
    text = format_resources(frozen_float_map({k: float(v) for k, v in amounts.items()}))

    assert "." not in text
    assert text == (" ".join(f"{k}={v}" for k, v in sorted(amounts.items())) or "-")


class RecordingView(StatusView):
    """A view that keeps what it was asked to show (optionally failing at the first)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(console=Console(file=io.StringIO()))
        self.shown: list[WorkerSnapshot] = []
        self.fail = fail

    def show(self, snapshot: WorkerSnapshot) -> None:
        if self.fail:
            raise RuntimeError("cannot draw")
        self.shown.append(snapshot)


async def test_a_running_worker_is_redrawn_from_a_fresh_snapshot_every_interval() -> None:
    view = RecordingView()
    taken = iter(range(1000))
    delays: list[float] = []
    third_wait = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            third_wait.set()
            await asyncio.Event().wait()

    refresh = asyncio.create_task(
        show_until_cancelled(
            view, lambda: WorkerSnapshot(name=f"w{next(taken)}"), interval=1.0, sleep=sleep
        )
    )
    await asyncio.wait_for(third_wait.wait(), 5)
    refresh.cancel()
    with pytest.raises(asyncio.CancelledError):
        await refresh

    assert [s.name for s in view.shown] == ["w0", "w1", "w2"]
    assert delays == [1.0, 1.0, 1.0]


async def test_a_view_that_cannot_draw_stops_refreshing_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger=STATUS_LOGGER)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    broken = RecordingView(fail=True)
    await asyncio.wait_for(
        show_until_cancelled(broken, lambda: WorkerSnapshot(name="w"), sleep=sleep), 5
    )

    assert delays == []
    assert "the status view failed" in caplog.text


def registered_idle(name: str = "w") -> WorkerSnapshot:
    return WorkerSnapshot(
        name=name,
        upstreams=(
            UpstreamSnapshot(endpoint="http://a", registered=True, last_poll_ok=True),
            UpstreamSnapshot(endpoint="http://b", registered=True, last_poll_ok=True),
        ),
    )


def test_a_worker_a_controller_holds_paused_says_paused_and_where() -> None:
    console = Console(record=True, file=io.StringIO(), width=160, color_system=None)
    console.print(render_status(registered_idle(), NOW, paused_on={"http://b"}))
    text = console.export_text()

    assert "w (paused)" in text
    assert row(text, "http://b")[1] == "yes (paused)"
    assert row(text, "http://a")[1] == "yes"


def test_a_worker_no_controller_holds_paused_says_running() -> None:
    text = rendered(registered_idle())

    assert "w (running)" in text
    assert "(paused)" not in text


class PausingClient:
    """A controller client whose ``QueryRunningTasks`` answers are scripted."""

    def __init__(self, endpoint: str, answers: list[bool | None]) -> None:
        self.endpoint = endpoint
        self.answers = answers

    async def query_running_tasks(self) -> RunningTasksStatus:
        answer = self.answers.pop(0) if self.answers else False
        if answer is None:
            raise ControllerError("unavailable", "connection refused")
        return RunningTasksStatus(disabled=answer)


async def test_the_live_view_learns_from_each_controller_whether_it_pauses_the_worker() -> None:
    out = io.StringIO()
    view = StatusView(console=Console(file=out, force_terminal=True, width=160), clock=lambda: NOW)
    clients = [PausingClient("http://a", [False, True, None]), PausingClient("http://b", [])]
    seen: list[str] = []
    rounds = 0

    async def sleep(_seconds: float) -> None:
        nonlocal rounds
        rounds += 1
        console = Console(record=True, file=io.StringIO(), width=160, color_system=None)
        console.print(render_status(registered_idle(), NOW, view.paused_on))
        seen.append(console.export_text().splitlines()[0])
        if rounds == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await watch_pauses(view, clients, sleep=sleep)  # type: ignore[arg-type]

    # An unreachable controller keeps its last known answer.
    assert seen == [
        "cirrus worker w (running)",
        "cirrus worker w (paused)",
        "cirrus worker w (paused)",
    ]
