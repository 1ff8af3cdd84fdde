"""The signal ladder, pause/resume, retry delays and the poll interval rule."""

from __future__ import annotations

import signal
from typing import NoReturn

import pytest

from app.worker.pause import PauseFailed, set_disabled, wait_until_idle
from app.worker.retry import Backoff, BackoffPolicy
from app.worker.signals import SignalLadder
from app.worker.upstream import Upstream, next_poll_interval
from domain.errors import DefiniteControllerError
from domain.protocol import WorkerInfo
from tests.unit.worker.fakes import FakeClock, FakeController, Sleeps


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def drain(self) -> None:
        self.events.append("drain")

    def cancel_all(self) -> None:
        self.events.append("cancel")


class Exited(Exception):
    pass


def test_signals_drain_then_cancel_then_exit_at_once_with_a_non_zero_code() -> None:
    worker = Recorder()
    codes: list[int] = []

    def exit_now(code: int) -> NoReturn:
        codes.append(code)
        raise Exited

    ladder = SignalLadder(worker, exit_now)
    ladder(signal.SIGTERM)
    assert worker.events == ["drain"]
    ladder(signal.SIGINT)
    assert worker.events == ["drain", "cancel"]
    with pytest.raises(Exited):
        ladder(signal.SIGTERM)
    assert codes == [128 + signal.SIGTERM]


@pytest.mark.parametrize(
    ("previous", "announced", "expected"),
    [(10.0, 0, 10.0), (10.0, 1, 1.0), (10.0, 3600, 3600.0), (10.0, 3601, 10.0), (5.0, 30, 30.0)],
)
def test_the_announced_poll_interval_is_used_only_between_1_and_3600(
    previous: float, announced: int, expected: float
) -> None:
    assert next_poll_interval(previous, announced) == expected


def test_backoff_grows_from_about_one_second_and_is_capped_at_fifteen() -> None:
    backoff = Backoff(BackoffPolicy())
    delays = [backoff.next_delay() for _ in range(12)]
    assert 1.0 <= delays[0] <= 2.0
    assert all(d <= 15.0 for d in delays)
    assert delays[-1] == 15.0
    backoff.reset()
    assert backoff.next_delay() <= 2.0


async def test_registration_is_retried_even_after_a_wrong_token() -> None:
    controller = FakeController()
    controller.failures["register"] = [
        DefiniteControllerError("unauthenticated", "bad token") for _ in range(3)
    ]
    sleeps = Sleeps()
    upstream = Upstream(controller, WorkerInfo(), clock=FakeClock(), sleep=sleeps)
    await upstream.register()
    assert upstream.registered
    assert len(sleeps.delays) == 3


async def test_pause_sets_disabled_and_wait_polls_until_no_task_runs() -> None:
    controller = FakeController()
    controller.running = ("t1",)
    sleeps = Sleeps()
    await set_disabled([controller], True)
    await wait_until_idle([controller], interval=7.0, sleep=sleeps)
    assert controller.names() == ["update_status", "query_running_tasks", "query_running_tasks"]
    assert sleeps.delays == [7.0]


async def test_pause_fails_when_the_controller_refuses() -> None:
    controller = FakeController()
    controller.failures["update_status"] = [DefiniteControllerError("permission_denied", "no")]
    with pytest.raises(PauseFailed, match="permission_denied"):
        await set_disabled([controller], True)


async def test_pause_reports_an_unregistered_worker_instead_of_a_change() -> None:
    controller = FakeController()
    controller.failures["update_status"] = [DefiniteControllerError("not_found", "unknown")]
    change = await set_disabled([controller], True)
    assert (change.changed, change.unregistered) == ((), (controller.endpoint,))


async def test_pause_reports_where_the_flag_was_set() -> None:
    controller = FakeController()
    change = await set_disabled([controller], True)
    assert (change.changed, change.unregistered) == ((controller.endpoint,), ())
