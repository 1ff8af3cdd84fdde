"""uvicorn serving an ASGI app for a runner that owns signals and the listening socket.

``ControllerServer`` leaves signal handling to its caller (who sets ``should_exit`` and
``force_exit``), calls ``on_shutdown`` as soon as shutdown begins (the controller answers its
held polls there, so their connections close at once), and on a forced exit cancels the
requests still in progress and still runs the app's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from adapters.http_server.listen import LISTEN_BACKLOG

log = logging.getLogger("cirrus.controller")

GRACEFUL_SHUTDOWN_SECONDS = 10
KEEP_ALIVE_SECONDS = 75
"""How long an idle worker connection stays open between polls (longer than a poll interval:
a worker re-uses its connection instead of opening one per poll)."""


class ControllerServer(uvicorn.Server):
    """uvicorn serving a controller app; the caller routes signals (``should_exit``)."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave signal handling to the caller (uvicorn would re-raise the signal on exit)."""
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Call ``on_shutdown`` first (held polls answer), then shut down as uvicorn does."""
        self.on_shutdown()
        await super().shutdown(sockets)
        if not self.force_exit:
            return
        requests = list(self.server_state.tasks)
        if requests:
            log.warning("forced exit: %d request(s) in progress cut short", len(requests))
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
        if not self.lifespan.shutdown_event.is_set():
            # uvicorn skips the app's shutdown on a forced exit, and the lifespan task, left
            # waiting, would be cancelled with a traceback; our shutdown only stops background
            # tasks, so it runs even now.
            await self.lifespan.shutdown()


class _QuietCancellation(logging.Filter):
    """Drop uvicorn's traceback of a request cancelled because the server stops.

    A forced exit (or the end of the graceful period) cancels requests still in progress; that
    is said once, in one line, not as one "Exception in ASGI application" traceback each.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


_QUIET_CANCELLATION = _QuietCancellation()


def controller_server(
    app: Any, on_shutdown: Callable[[], None], log_level: str = "info"
) -> ControllerServer:
    """Return a server for an ASGI ``app`` (no access log: workers poll constantly)."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        http="httptools",  # several times faster than h11 at parsing the workers' calls
        log_level=log_level,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        backlog=LISTEN_BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    logging.getLogger("uvicorn.error").addFilter(_QUIET_CANCELLATION)  # added once
    return ControllerServer(config, on_shutdown)
