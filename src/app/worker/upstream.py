"""One upstream controller as the worker sees it: its client, session and poll interval.

``register`` retries forever (a wrong token included: the worker never exits because a controller
refused it); ``call`` retries transient errors and re-registers once when the session is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.worker.retry import Backoff, BackoffPolicy, Sleep, retry_transient
from domain.errors import ControllerError, SessionLostError
from domain.ports import Clock, ControllerClient
from domain.protocol import WorkerInfo

T = TypeVar("T")

DEFAULT_POLL_INTERVAL = 10.0
MAX_POLL_INTERVAL = 3600

log = logging.getLogger("cirrus.worker")


def next_poll_interval(previous: float, announced: int) -> float:
    """Return the poll interval after a response announcing ``announced`` seconds."""
    if 1 <= announced <= MAX_POLL_INTERVAL:
        return float(announced)
    return previous


class Upstream:
    """A controller endpoint with its session state, shared by the poll loop and the outbox."""

    def __init__(
        self,
        client: ControllerClient,
        worker_info: WorkerInfo,
        *,
        clock: Clock,
        policy: BackoffPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.worker_info = worker_info
        self.policy = policy or BackoffPolicy()
        self.sleep = sleep
        self.clock = clock
        self.registered = False
        self.poll_interval = DEFAULT_POLL_INTERVAL
        self.last_poll_ok = False
        self.last_poll_time: float | None = None
        self.last_error = ""
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        """The controller's base URL."""
        return self.client.endpoint

    async def register(self) -> None:
        """Register until the controller accepts us; log and back off on every failure."""
        async with self._lock:
            if self.registered:
                return
            backoff = Backoff(self.policy)
            while True:
                try:
                    await self.client.register(self.worker_info)
                except ControllerError as error:
                    self.last_error = str(error)
                    delay = backoff.next_delay()
                    log.error(
                        "registering with %s failed: %s; retrying in %.1f s",
                        self.endpoint,
                        error,
                        delay,
                    )
                    await self.sleep(delay)
                    continue
                self.registered = True
                self._generation += 1
                log.info("registered with %s", self.endpoint)
                return

    @property
    def generation(self) -> int:
        """Counts successful registrations; identifies the current session."""
        return self._generation

    def session_lost(self, generation: int) -> None:
        """Forget the session of ``generation`` (a newer one is kept)."""
        if generation == self._generation:
            self.registered = False

    async def call(self, what: str, fn: Callable[[ControllerClient], Awaitable[T]]) -> T:
        """Call ``fn`` with retries of transient errors; re-register once on a lost session."""
        reregistered = False
        while True:
            if not self.registered:
                await self.register()
            generation = self._generation
            try:
                return await retry_transient(
                    what, lambda: fn(self.client), policy=self.policy, sleep=self.sleep
                )
            except SessionLostError:
                if reregistered:
                    raise
                log.warning("%s: session lost at %s; registering again", what, self.endpoint)
                self.session_lost(generation)
                reregistered = True
