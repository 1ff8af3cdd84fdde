"""A lean HTTP/1.1 transport for httpx: plain ``http://`` over asyncio, connections kept alive.

httpx's default transport (httpcore on anyio, parsing with the pure-Python h11) costs the worker
about 0.7 ms of CPU per call, and a trivial task makes six or seven calls: on a small machine
shared with the controller, that is what bounds how many tasks per second one worker turns
over. This transport speaks the part of HTTP/1.1 a Twirp client needs (one request at a time
per connection; answers framed by ``Content-Length``, chunked, or by closing) directly on an
asyncio protocol, for a fraction of that. Other schemes (``https://``) go to the fallback
transport if one is given. Proxies are not its business: httpx ignores proxy settings once it
is given a transport, so the Twirp client only uses this one for endpoints no proxy covers.

An answer's body is capped (``max_answer_bytes``, 16 MiB by default): a longer one, announced
or sent (an endless chunked answer included), fails with ``AnswerTooLargeError`` as soon as the
cap is passed, and its connection is closed, so a hostile or broken server cannot make the worker
buffer more than the cap.

The read timeout bounds the whole answer (httpcore's bounds each read); there is no write
timeout of its own, the answer's wait covers sending too.

It is an ``httpx.AsyncBaseTransport``: requests and responses are httpx's, decompression of an
encoded answer is httpx's, and failures are httpx's exceptions (``ConnectError``,
``ReadTimeout``, ``RemoteProtocolError``, …), so the client above it cannot tell the difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

import httpx

from adapters.twirp.answer_cap import MAX_ANSWER_BYTES, AnswerTooLargeError

MAX_HEAD_BYTES: Final = 64 * 1024
"""The longest status line plus headers accepted in an answer."""

MAX_IDLE_PER_HOST: Final = 6
"""Idle kept-alive connections kept per host and port."""

MAX_CONNECTIONS: Final = 16
"""Requests in flight at once (each on its own connection); one beyond waits, up to the pool
timeout. Idle connections are bounded by ``MAX_IDLE_PER_HOST`` instead."""

IDLE_SECONDS: Final = 4.0
"""An idle connection is not reused after this long: servers drop idle ones (uvicorn after 5 s),
and a request sent just as the server closes would be lost."""

_NO_BODY_STATUSES: Final = frozenset({204, 304})


class _Eof(Exception):
    """The server closed the connection (or it failed) before the awaited bytes arrived."""


class _Connection(asyncio.Protocol):
    """One TCP connection: a receive buffer filled by the event loop, read by one request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- use ----------------------------------------------------------------------------------

    def reusable(self, now: float) -> bool:
        """Whether an idle connection may carry another request: open, silent, recently used."""
        return (
            not self._closed
            and not self._buffer
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < IDLE_SECONDS
        )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> None:
        """Queue bytes for sending (the transport buffers; the answer's wait covers sending)."""
        assert self.transport is not None
        if self._closed or self.transport.is_closing():
            raise _Eof
        self.transport.write(data)

    async def _more(self) -> None:
        if self._closed:
            raise _Eof
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_until(self, marker: bytes, limit: int) -> bytes:
        """Return the bytes up to ``marker`` (consumed, not returned)."""
        start = 0
        while (end := self._buffer.find(marker, start)) < 0:
            if len(self._buffer) > limit:
                raise httpx.RemoteProtocolError("the answer's header section is too long")
            start = max(0, len(self._buffer) - len(marker) + 1)
            await self._more()
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(marker)]
        return data

    async def read_exactly(self, size: int) -> bytes:
        """Return the next ``size`` bytes."""
        while len(self._buffer) < size:
            await self._more()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_to_close(self, limit: int) -> bytes:
        """Return every byte until the server closes the connection (at most ``limit``)."""
        while not self._closed:
            if len(self._buffer) > limit:
                raise AnswerTooLargeError(limit)
            await self._more()
        if len(self._buffer) > limit:
            raise AnswerTooLargeError(limit)
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    @property
    def received_nothing(self) -> bool:
        """Whether no byte of an answer has arrived (for telling a dropped request apart)."""
        return not self._buffer


class _Head:
    """The status line and headers of an answer."""

    def __init__(self, raw: bytes) -> None:
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise httpx.RemoteProtocolError(f"malformed status line: {lines[0][:100]!r}")
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) == 3 else b""
        self.headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx.RemoteProtocolError(f"malformed header line: {line[:100]!r}")
            self.headers.append((name, value.strip()))

    def get(self, name: bytes) -> bytes | None:
        """Return the last value of a header (case-insensitive), or ``None``."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this answer."""
        tokens = {t.strip().lower() for t in (self.get(b"connection") or b"").split(b",")}
        if self.version == b"HTTP/1.0":
            return b"keep-alive" in tokens
        return b"close" not in tokens


def _timeout(extensions: dict[str, object], phase: str) -> float | None:
    timeouts = extensions.get("timeout")
    value = timeouts.get(phase) if isinstance(timeouts, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


class LeanHTTPTransport(httpx.AsyncBaseTransport):
    """``http://`` requests on kept-alive asyncio connections; anything else to ``fallback``
    (refused with ``httpx.UnsupportedProtocol`` without one)."""

    def __init__(
        self,
        fallback: httpx.AsyncBaseTransport | None = None,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_idle_per_host: int = MAX_IDLE_PER_HOST,
        clock: Callable[[], float] = time.monotonic,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._fallback = fallback
        self.max_answer_bytes = max_answer_bytes
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_idle_per_host
        self._clock = clock
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request and return its whole answer."""
        if request.url.scheme != "http":
            if self._fallback is None:
                raise httpx.UnsupportedProtocol(
                    f"only http:// here, not {request.url.scheme}://", request=request
                )
            return await self._fallback.handle_async_request(request)
        if self._closed:
            raise RuntimeError("the transport is closed")
        payload = _request_head(request) + _request_body(request, await request.aread())
        pool_timeout = _timeout(request.extensions, "pool")
        try:
            async with asyncio.timeout(pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection in time", request=request) from None
        try:
            return await self._exchange(request, payload)
        finally:
            self._slots.release()

    async def _exchange(self, request: httpx.Request, payload: bytes) -> httpx.Response:
        key = (request.url.host, request.url.port or 80)
        connection = self._take_idle(key)
        fresh = connection is None
        if connection is None:
            connection = await self._connect(request, key)
        done = False
        try:
            try:
                connection.send(payload)
                response, keep = await self._answer(request, connection)
            except _Eof:
                if not connection.received_nothing:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection in the middle of its answer",
                        request=request,
                    ) from None
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                    + ("" if fresh else " (on a kept-alive connection)"),
                    request=request,
                ) from None
            done = True
        finally:
            if done and keep:
                self._put_idle(key, connection)
            else:
                connection.close()
        return response

    def _take_idle(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = self._clock()
        while idle:
            connection = idle.pop()
            if connection.reusable(now):
                return connection
            connection.close()
        return None

    def _put_idle(self, key: tuple[str, int], connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        idle = self._idle.setdefault(key, [])
        connection.idle_since = self._clock()
        idle.append(connection)
        while len(idle) > self._max_idle:
            idle.pop(0).close()

    async def _connect(self, request: httpx.Request, key: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(_timeout(request.extensions, "connect")):
                _, connection = await loop.create_connection(_Connection, key[0], key[1])
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from None
        except OSError as error:
            raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from None
        return connection

    async def _answer(
        self, request: httpx.Request, connection: _Connection
    ) -> tuple[httpx.Response, bool]:
        try:
            async with asyncio.timeout(_timeout(request.extensions, "read")):
                head = _Head(await connection.read_until(b"\r\n\r\n", MAX_HEAD_BYTES))
                while 100 <= head.status < 200:  # interim answers (100 Continue) carry no body
                    head = _Head(await connection.read_until(b"\r\n\r\n", MAX_HEAD_BYTES))
                body, framed = await _body(request, head, connection, self.max_answer_bytes)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from None
        except AnswerTooLargeError as error:
            raise AnswerTooLargeError(error.limit, request) from None
        response = httpx.Response(
            head.status,
            headers=head.headers,
            stream=httpx.ByteStream(body),
            extensions={"http_version": head.version, "reason_phrase": head.reason},
            request=request,
        )
        return response, framed and head.keep_alive

    async def aclose(self) -> None:
        """Close every idle connection and the fallback."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


def _request_head(request: httpx.Request) -> bytes:
    lines = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _request_body(request: httpx.Request, body: bytes) -> bytes:
    # httpx asks for chunked framing when the body is a stream of unknown length; it has been
    # read whole by now, so it goes as one chunk and the last one.
    if request.headers.get("transfer-encoding", "").lower() != "chunked":
        return body
    return (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"


async def _body(
    request: httpx.Request, head: _Head, connection: _Connection, limit: int
) -> tuple[bytes, bool]:
    """Return the answer's body and whether its end was framed (so the connection may go on)."""
    if request.method == "HEAD" or head.status in _NO_BODY_STATUSES:
        return b"", True
    encoding = (head.get(b"transfer-encoding") or b"").lower()
    if encoding:
        if encoding.split(b",")[-1].strip() != b"chunked":
            return await connection.read_to_close(limit), False
        return await _chunked(connection, limit), True
    length = head.get(b"content-length")
    if length is None:
        return await connection.read_to_close(limit), False
    if not length.isdigit():
        raise httpx.RemoteProtocolError(f"malformed Content-Length: {length[:40]!r}")
    if int(length) > limit:
        raise AnswerTooLargeError(limit)  # refused before a byte of it is read
    return await connection.read_exactly(int(length)), True


async def _chunked(connection: _Connection, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await connection.read_until(b"\r\n", MAX_HEAD_BYTES)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError(f"malformed chunk size: {size_text[:40]!r}") from None
        if size == 0:
            while await connection.read_until(b"\r\n", MAX_HEAD_BYTES):
                pass  # trailer fields, up to the empty line
            return b"".join(parts)
        total += size
        if total > limit:
            raise AnswerTooLargeError(limit)  # checked before the chunk is read
        parts.append(await connection.read_exactly(size))
        if await connection.read_exactly(2) != b"\r\n":
            raise httpx.RemoteProtocolError("a chunk does not end with CRLF")
