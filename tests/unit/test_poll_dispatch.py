"""``PollDispatcher.offer``: a queued task wakes only the held poll chosen to take it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from adapters.storage.postgres_wakeups import QUEUED_PREFIX, parse_queued, queued_payloads
from app.controller.long_poll import PollTicket, PollWaiters
from app.controller.poll_dispatch import PollDispatcher
from domain.scheduling import QueuedTask, WorkerView
from domain.store import ControllerStore
from domain.wakeups import QueuedNotice, WakeTarget


class RecordingRelay:
    """A ``WakeRelay`` that remembers what was published."""

    def __init__(self) -> None:
        self.queued: list[list[str]] = []

    def publish(self, worker_name: str | None) -> None:
        """Not expected here."""
        raise AssertionError(f"published a wake of {worker_name!r}")

    def publish_queued(self, notices: Sequence[QueuedNotice]) -> None:
        """Remember the task ids."""
        self.queued.append([notice.task_id for notice in notices])

    async def run(self, target: WakeTarget) -> None:
        """Nothing to receive."""


def held(waiters: PollWaiters, name: str, **view: Any) -> PollTicket:
    """A held poll of ``name`` whose look found nothing (its view set)."""
    ticket = waiters.subscribe(name)
    ticket.view = WorkerView(name, **view)
    return ticket


def dispatcher() -> tuple[PollDispatcher, PollWaiters, RecordingRelay, list[int]]:
    waiters = PollWaiters()
    relay = RecordingRelay()
    waiters.relay_to(relay)
    wakes: list[int] = []
    waiters.count_wake = lambda: wakes.append(1)
    # ``offer`` reads nothing: no store is needed.
    return PollDispatcher(cast(ControllerStore, None), waiters), waiters, relay, wakes


def test_a_task_wakes_only_the_one_idle_poll_with_its_labels() -> None:
    dispatch, waiters, relay, wakes = dispatcher()
    idle = [held(waiters, f"idle-{i}", labels={"pool": "idle"}) for i in range(50)]
    real = held(waiters, "real", labels={"pool": "real"})
    dispatch.offer([QueuedTask("t1", labels={"pool": "real"})])
    assert real.event.is_set()
    assert real.promised == ["t1"]
    assert not any(ticket.event.is_set() for ticket in idle)
    assert len(wakes) == 1
    assert relay.queued == []  # nothing left for other controllers


def test_tasks_of_several_label_sets_in_one_offer_each_wake_a_poll_with_their_labels() -> None:
    dispatch, waiters, relay, wakes = dispatcher()
    idle = [held(waiters, f"idle-{i}", labels={"pool": "idle"}) for i in range(3)]
    linux = held(waiters, "linux", labels={"os": "linux", "arch": "amd64"})
    mac = held(waiters, "mac", labels={"os": "darwin"})
    dispatch.offer(
        [
            QueuedTask("t1", labels={"os": "darwin"}, sequence=1),
            QueuedTask("t2", labels={"os": "linux"}, sequence=2),
            QueuedTask("t3", sequence=3),  # no labels: any worker may take it
            QueuedTask("t4", labels={"os": "windows"}, sequence=4),
        ]
    )
    assert (mac.promised, linux.promised) == (["t1"], ["t2"])
    assert [ticket.promised for ticket in idle] == [["t3"], [], []]
    assert len(wakes) == 3
    assert relay.queued == [["t4"]]


def test_a_second_task_goes_to_another_poll_while_the_first_is_still_promised() -> None:
    dispatch, waiters, _relay, _wakes = dispatcher()
    first, second = held(waiters, "a"), held(waiters, "b")
    dispatch.offer([QueuedTask("t1", sequence=1)])
    dispatch.offer([QueuedTask("t1", sequence=1), QueuedTask("t2", sequence=2)])
    assert (first.promised, second.promised) == (["t1"], ["t2"])


def test_a_poll_still_looking_is_woken_to_look_again_and_untaken_tasks_are_published() -> None:
    dispatch, waiters, relay, _wakes = dispatcher()
    looking = waiters.subscribe("looking")  # no view yet: its look is under way
    busy = held(waiters, "busy", running_task_ids=("x",))
    dispatch.offer([QueuedTask("t1", labels={"pool": "gpu"})])
    assert looking.event.is_set()
    assert not busy.event.is_set()
    assert relay.queued == [["t1"]]


def test_queued_payloads_round_trip_and_split_under_the_notify_limit() -> None:
    notices = [QueuedNotice(f"task-{i:04d}", {"pool": "p" * 50}) for i in range(300)]
    payloads = queued_payloads(notices)
    assert len(payloads) > 1
    assert all(p.startswith(QUEUED_PREFIX) and len(p.encode()) < 8000 for p in payloads)
    parsed = [entry for payload in payloads for entry in parse_queued(payload)]
    assert parsed == [(n.task_id, dict(n.labels)) for n in notices]
    assert parse_queued(QUEUED_PREFIX + "not json") == []
