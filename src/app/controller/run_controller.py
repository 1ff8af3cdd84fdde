"""Running one controller process: ``--check`` (look, change nothing) and serving until
SIGTERM/SIGINT (the first stops gracefully, the second forces), with gRPC beside HTTP when
configured. The parts come from the ``ControllerContainer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import click

from adapters.http_server.listen import raise_open_file_limit
from adapters.http_server.serving import ControllerServer
from adapters.storage.open_store import redact
from app.controller.container import ControllerContainer
from app.controller.outward import (
    listen_socket,
    missing_sqlite_file,
    open_outward,
    open_store,
    start_grpc,
)
from app.controller.server import DEFAULT_POLL_INTERVAL_SECONDS
from app.controller.settings import ControllerSettings
from app.controller_tokens import ADMIN, REGISTRATION, token_state

log = logging.getLogger("cirrus.controller")

FAILURE_EXIT_CODE = 1


async def check_controller(settings: ControllerSettings) -> int:
    """Check the listen address and the database (creating nothing); print a summary."""
    listen_socket(settings).close()  # it is free now; ``run`` binds it again
    url, address = settings.database_url, settings.address
    missing = missing_sqlite_file(url)
    if missing is None:
        store = await open_store(url, os.environ)
        try:
            registration = await token_state(store, settings.registration_token, REGISTRATION)
            admin = await token_state(store, settings.admin_token, ADMIN)
        finally:
            await store.aclose()
        database = f"{redact(url)} (opened, schema up to date)"
    else:
        # A check only looks: the first ``controller run`` creates the file, not --check.
        first = "generated and printed on the first start"
        registration = "given" if settings.registration_token else first
        admin = "given" if settings.admin_token else first
        database = (
            f"{redact(url)} does not exist yet (not created by --check; "
            f"`cirrus controller run` creates {missing})"
        )
    free = "any free port" if address.port == 0 else "free"
    click.echo(f"listen: {address.url} ({free})")
    click.echo(f"database: {database}")
    click.echo(f"poll interval: {DEFAULT_POLL_INTERVAL_SECONDS} s")
    click.echo(f"registration token: {registration}")
    click.echo(f"admin token: {admin}")
    click.echo("configuration OK")
    return 0


class StopRequests:
    """SIGTERM/SIGINT seen so far: the first asks the server to stop, the second forces it."""

    def __init__(self) -> None:
        self.count = 0
        self.server: ControllerServer | None = None

    def on_signal(self, signum: int) -> None:
        """Count a signal and pass it on to the server."""
        self.count += 1
        log.warning("%s: shutting down", signal.Signals(signum).name)
        self.apply()

    def attach(self, server: ControllerServer) -> None:
        """Route the signals to ``server``, including those that came before it existed."""
        self.server = server
        self.apply()

    def apply(self) -> None:
        """Tell the server what the signals so far ask for."""
        if self.server is None or self.count == 0:
            return
        self.server.should_exit = True
        if self.count > 1:
            self.server.force_exit = True


async def serve_controller(settings: ControllerSettings) -> int:
    """Serve until SIGTERM/SIGINT; return the exit code."""
    # Signals are routed from the start: a SIGTERM that arrives while the store opens, or just
    # after "listening" is printed, stops the controller cleanly instead of killing it.
    stop = StopRequests()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.on_signal, signum)
    try:
        return await _open_and_serve(settings, stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _open_and_serve(settings: ControllerSettings, stop: StopRequests) -> int:
    log.info("open-file limit: %d (each held poll is one)", raise_open_file_limit())
    stack = contextlib.AsyncExitStack()
    try:
        parts = await open_outward(settings, stack)
        container = ControllerContainer(
            settings=settings,
            store=parts.store,
            tokens=parts.tokens,
            secrets=parts.secrets,
            blobs=parts.blobs,
            listen_url=parts.listen_url,
        )
        stack.push_async_callback(container.metrics().aclose)
        server = container.server()
        limits = settings.limits
        grpc = await start_grpc(container.app(), limits.grpc_listen, limits.grpc_listen_key)
        stop.attach(server)
        for label, token in parts.tokens.new_ones():
            click.echo(f"{label}: {token}")
        click.echo(f"controller listening on {parts.listen_url}")
        if grpc is not None:
            click.echo(f"gRPC listening on {grpc.address}")
        sys.stdout.flush()
        waiters = container.runtime().waiters
        waiters.relay_to(container.wake_relay())
        relaying = asyncio.create_task(waiters.run_relay())
        try:
            await server.serve(sockets=[parts.socket])
        finally:
            relaying.cancel()
            if grpc is not None:
                await grpc.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
        return 0 if server.started else FAILURE_EXIT_CODE
    finally:
        await stack.aclose()
