"""SIGTERM/SIGINT handling of ``worker run`` (CLI.md "Signals"), uvicorn style.

First signal: drain. Second: cancel running tasks (they are still cleaned up and reported).
Third: exit at once with a non-zero status.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import NoReturn

from domain.ports import Stoppable

log = logging.getLogger("cirrus.worker")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _exit_now(code: int) -> NoReturn:
    os._exit(code)


class SignalLadder:
    """Counts termination signals and escalates: drain, cancel, exit."""

    def __init__(self, worker: Stoppable, exit_now: Callable[[int], NoReturn] = _exit_now) -> None:
        self.worker = worker
        self.exit_now = exit_now
        self.count = 0

    def __call__(self, signum: int) -> None:
        """Handle one signal."""
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            log.warning("%s: draining (again to cancel running tasks, a third time to exit)", name)
            self.worker.drain()
        elif self.count == 2:
            log.warning("%s: cancelling running tasks", name)
            self.worker.cancel_all()
        else:
            log.error("%s: exiting now", name)
            self.exit_now(128 + signum)


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, ladder: SignalLadder
) -> Callable[[], None]:
    """Route SIGTERM and SIGINT to ``ladder``; return a function that restores the defaults."""
    for signum in SIGNALS:
        loop.add_signal_handler(signum, ladder, signum)

    def remove() -> None:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)

    return remove
