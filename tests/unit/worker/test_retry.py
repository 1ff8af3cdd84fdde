"""The worker's backoff and retry policy, driven by tenacity through its public API."""

from __future__ import annotations

import pytest

from app.worker.retry import Backoff, BackoffPolicy, retry_transient
from domain.errors import DefiniteControllerError, TransientControllerError


def test_a_backoff_doubles_from_its_initial_delay_up_to_its_cap() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, cap=15.0, jitter=0.0))
    assert [backoff.next_delay() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_a_reset_backoff_starts_again_from_its_initial_delay() -> None:
    backoff = Backoff(BackoffPolicy(initial=0.5, cap=15.0, jitter=0.0))
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_jitter_adds_up_to_its_bound_and_never_passes_the_cap() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, cap=6.0, jitter=1.0))
    delays = [backoff.next_delay() for _ in range(40)]
    assert 1.0 <= delays[0] <= 2.0
    assert 2.0 <= delays[1] <= 3.0
    assert all(delay <= 6.0 for delay in delays)
    assert delays[-1] == 6.0


async def test_transient_errors_are_retried_with_growing_waits_until_the_call_succeeds() -> None:
    waits: list[float] = []
    failures = [TransientControllerError("unavailable", "down")] * 3

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def call() -> str:
        if failures:
            raise failures.pop()
        return "answer"

    policy = BackoffPolicy(initial=1.0, cap=3.0, jitter=0.0)
    assert await retry_transient("Heartbeat", call, policy=policy, sleep=sleep) == "answer"
    assert waits == [1.0, 2.0, 3.0]


async def test_a_definite_error_is_raised_at_once_without_a_retry() -> None:
    calls: list[int] = []

    async def sleep(seconds: float) -> None:
        raise AssertionError(f"no wait expected, got {seconds}")

    async def call() -> None:
        calls.append(1)
        raise DefiniteControllerError("invalid_argument", "no")

    with pytest.raises(DefiniteControllerError):
        await retry_transient("Heartbeat", call, policy=BackoffPolicy(), sleep=sleep)
    assert calls == [1]
