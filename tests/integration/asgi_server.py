"""Serve an ASGI app with uvicorn on 127.0.0.1, on a port the kernel chooses, inside a test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn

STARTUP_DEADLINE = 10.0


@asynccontextmanager
async def serve_asgi(
    app: Any,
    *,
    lifespan: Literal["on", "off"] = "off",
    tls: tuple[str, str] | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yield its base URL (``http://127.0.0.1:PORT``, or
    ``https://`` with ``tls``, a certificate file and its key file).

    Leaving the block stops uvicorn gracefully (requests in progress get up to 5 s).
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan=lifespan,
        ws="none",
        log_level="warning",
        timeout_graceful_shutdown=5,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not server.started:
        if serving.done() or time.monotonic() >= deadline:
            server.should_exit = True
            await serving
            raise AssertionError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
