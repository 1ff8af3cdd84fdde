"""Retry policy for controller calls: exponential backoff with jitter, capped at 15 s.

Only transient errors (5xx, 429, connection errors, timeouts) are retried by ``retry_transient``;
a definite answer (4xx) is the caller's to handle. The cap keeps a returning controller noticed
within ~15 s (PROTOCOL.md "Transport").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    Retrying,
    retry_always,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from domain.errors import TransientControllerError

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger("cirrus.worker")


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with jitter: ``initial`` doubling up to ``cap`` seconds."""

    initial: float = 1.0
    cap: float = 15.0
    jitter: float = 1.0

    def wait(self) -> wait_exponential_jitter:
        """Return the tenacity wait strategy of this policy."""
        return wait_exponential_jitter(multiplier=self.initial, max=self.cap, jitter=self.jitter)


class Backoff:
    """A stateful backoff for hand-written loops: ``next_delay()`` grows, ``reset()`` restarts.

    tenacity counts the attempts and computes each wait, through its documented iteration
    (``for attempt in Retrying(...): with attempt: ...``); its ``sleep`` only records the delay,
    because the loop sleeps on its own terms (interruptibly, e.g. when the worker stops).
    """

    def __init__(self, policy: BackoffPolicy) -> None:
        self._policy = policy
        self._delay = 0.0
        self._attempts: Iterator[AttemptManager] = iter(())
        self._current: AttemptManager | None = None
        self.reset()

    def _record(self, seconds: float) -> None:
        self._delay = seconds

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        if self._current is None:
            self._current = next(self._attempts)
        with self._current:
            pass  # the attempt itself ran (and failed) in the caller's loop
        # Asking for the next attempt makes tenacity compute the wait and "sleep" it.
        self._current = next(self._attempts)
        return self._delay

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        retrying = Retrying(
            wait=self._policy.wait(),
            retry=retry_always,
            sleep=self._record,
        )
        self._attempts = iter(retrying)
        self._current = None


def _log_before_sleep(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s failed (%s); retrying in %.1f s", what, error, delay)

    return before_sleep


async def retry_transient(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    policy: BackoffPolicy,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``call`` until it does not raise a transient error; other errors propagate."""
    retrying = AsyncRetrying(
        sleep=sleep,
        wait=policy.wait(),
        retry=retry_if_exception_type(TransientControllerError),
        before_sleep=_log_before_sleep(what),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
