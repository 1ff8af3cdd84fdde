"""Fixtures shared by the integration tests: a running fake controller, the VM guest user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.fake_controller import FakeController
from tests.integration.vm.guest_user import guest_user as guest_user  # registered once, here


@pytest.fixture
def fake_controller() -> Iterator[FakeController]:
    """A fake Twirp controller on 127.0.0.1 (poll interval 1 s, idle polls held up to 1 s)."""
    controller = FakeController(poll_interval=1, hold_poll_seconds=1.0)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
