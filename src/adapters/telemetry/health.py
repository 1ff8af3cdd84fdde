"""The ``--listen`` HTTP server: ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text).

A plain asyncio server in the worker's own event loop: it installs no signal handlers (the
worker's drain-on-SIGTERM stays intact) and configures no logging. Every connection serves one
request and is closed; slow or oversized requests are cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from types import TracebackType

from domain.errors import ConfigError

log = logging.getLogger("cirrus.telemetry")

LISTEN_KEY = "--listen"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_TIMEOUT_SECONDS = 5.0
MAX_HEADER_LINES = 100
STREAM_LIMIT = 16 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


def parse_listen_address(value: str, *, allow_public: bool = False) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6); refuse non-loopback hosts unless allowed."""
    host, colon, port_text = value.strip().rpartition(":")
    if not colon or not host:
        raise ConfigError(LISTEN_KEY, f"expected HOST:PORT, e.g. 127.0.0.1:9090, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(LISTEN_KEY, f"port must be a number from 0 to 65535, got {port_text!r}")
    if not allow_public and not is_loopback(host):
        raise ConfigError(
            LISTEN_KEY,
            f"{host} is not a loopback address; the probes and metrics would be public "
            "(listen on 127.0.0.1 or ::1)",
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP address (no name is resolved)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HealthServer:
    """Serves the probes and the metrics text until closed."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ready: Callable[[], bool],
        metrics_text: Callable[[], bytes] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self._ready = ready
        self._metrics_text = metrics_text
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful when 0 was asked for)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def open_connections(self) -> int:
        """Connections being served right now."""
        return len(self._connections)

    async def start(self) -> None:
        """Bind and start serving in the running event loop."""
        self._server = await asyncio.start_server(
            self._accept, self.host, self.requested_port, limit=STREAM_LIMIT
        )
        log.info("serving /healthz, /readyz and /metrics on %s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and end open connections."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.cancel()
        for connection in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await connection
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_one(reader, writer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), REQUEST_TIMEOUT_SECONDS)
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            request = None
        if request is None:
            status, content_type, body, head = 400, "text/plain", b"bad request\n", False
        else:
            method, path = request
            head = method == "HEAD"
            status, content_type, body = await self._respond(method, path)
        header = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        with contextlib.suppress(ConnectionError):
            writer.write(header if head else header + body)
            await writer.drain()

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        route = path.split("?", 1)[0]
        if route not in ("/healthz", "/readyz", "/metrics"):
            return 404, "text/plain", b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if route == "/healthz":
            return 200, "text/plain", b"ok\n"
        if route == "/readyz":
            if self._is_ready():
                return 200, "text/plain", b"ready\n"
            return 503, "text/plain", b"not ready\n"
        if self._metrics_text is None:
            return 404, "text/plain", b"metrics are not enabled\n"
        # Collecting runs the gauge callbacks and takes SDK locks: keep it off the event loop.
        text = await asyncio.to_thread(self._metrics_text)
        return 200, PROMETHEUS_CONTENT_TYPE, text

    def _is_ready(self) -> bool:
        try:
            return bool(self._ready())
        except Exception:
            log.exception("readiness check failed")
            return False


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """Read the request line and headers; return (method, path), None if malformed."""
    line = await reader.readline()
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    for _ in range(MAX_HEADER_LINES):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            return parts[0].upper(), parts[1]
    return None
