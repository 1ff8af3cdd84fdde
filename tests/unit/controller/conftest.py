"""Fixtures of the controller's unit tests: services on the in-memory store fakes."""

from __future__ import annotations

import pytest

from app.controller.long_poll import PollWaiters
from app.controller.scheduler_service import SchedulerService
from tests.unit.controller.fake_store import FakeStore
from tests.unit.controller.fake_tasks import FakeClock

OFFLINE_AFTER = 60.0
"""Seconds of silence after which the tests' scheduler counts a worker as lost."""


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test says so."""
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> FakeStore:
    """A fresh in-memory store."""
    return FakeStore(clock)


@pytest.fixture
def scheduler(store: FakeStore, clock: FakeClock) -> SchedulerService:
    """The scheduling service on the fake store."""
    return SchedulerService(store, clock, PollWaiters(), offline_after_seconds=OFFLINE_AFTER)
