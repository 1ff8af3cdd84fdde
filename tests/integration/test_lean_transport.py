"""The lean HTTP/1.1 transport through a real httpx client, against real servers on 127.0.0.1.

Two kinds of server: uvicorn running a small Starlette app (a real HTTP stack on the other end),
and a raw asyncio server whose answers the tests write byte for byte (framing, malformed and
truncated answers, servers that close or never answer). Both record the client port of every
request, so connection reuse is observed from the server's side.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.twirp.lean_transport import IDLE_SECONDS, LeanHTTPTransport
from tests.integration.asgi_server import serve_asgi

pytestmark = pytest.mark.integration

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
DEADLINE_SECONDS = 5.0


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds, failing the test after a deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


# --- uvicorn + Starlette ---------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the Starlette app saw it."""

    port: int
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EchoApp:
    """Records every request; ``/echo`` answers JSON about it, ``/held`` waits for a release."""

    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: int = 0

    @property
    def ports(self) -> list[int]:
        """The client port of each request, in order."""
        return [s.port for s in self.seen]

    async def echo(self, request: Request) -> Response:
        """Record the request and answer 201 with its digest and a custom header."""
        body = await self._record(request)
        digest = hashlib.sha256(body).hexdigest()
        answer = {"length": len(body), "sha256": digest, "path": request.url.path}
        return JSONResponse(answer, status_code=201, headers={"x-answer": "yes"})

    async def held(self, request: Request) -> Response:
        """Record the request, then wait for ``release`` before answering."""
        await self._record(request)
        self.arrived += 1
        await self.release.wait()
        return Response(b"released", media_type="text/plain")

    async def _record(self, request: Request) -> bytes:
        body = await request.body()
        assert request.client is not None
        self.seen.append(Seen(request.client.port, request.url.path, dict(request.headers), body))
        return body


@pytest.fixture
async def app_server() -> AsyncIterator[tuple[EchoApp, str]]:
    """The echo app served by uvicorn on 127.0.0.1, port chosen by the kernel."""
    app = EchoApp()
    routes = [
        Route("/echo", app.echo, methods=["GET", "POST"]),
        Route("/held", app.held, methods=["GET", "POST"]),
    ]
    async with serve_asgi(Starlette(routes=routes)) as url:
        try:
            yield app, url
        finally:
            app.release.set()


@asynccontextmanager
async def lean_client(
    *,
    fallback: httpx.AsyncBaseTransport | None = None,
    timeouts: httpx.Timeout | float = 5.0,
    max_connections: int = 16,
    max_idle_per_host: int = 6,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[tuple[httpx.AsyncClient, LeanHTTPTransport]]:
    """An httpx client on a lean transport (fallback: httpx's own), closed on the way out."""
    transport = LeanHTTPTransport(
        fallback or httpx.AsyncHTTPTransport(),
        max_connections=max_connections,
        max_idle_per_host=max_idle_per_host,
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport, timeout=timeouts) as client:
        yield client, transport


# --- the raw server --------------------------------------------------------------------------


@dataclass
class Reply:
    """What the raw server does for one request: wait, write ``data``, maybe close."""

    data: bytes = OK
    close: bool = False
    hold: asyncio.Event | None = None
    """Wait for this event (or the client closing) before writing; never set: never answer."""


@dataclass
class RawRequest:
    """One request as the raw server read it."""

    port: int
    head: bytes
    body: bytes


@dataclass
class RawServer:
    """Answers requests with scripted bytes (``OK`` when the script is empty) and records all."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[RawRequest] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    closed_by_client: set[int] = field(default_factory=set)
    url: str = ""
    _handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    def script(self, *replies: Reply | bytes) -> None:
        """Queue the next answers, in order, whatever connection the requests come on."""
        self.replies += [r if isinstance(r, Reply) else Reply(r) for r in replies]

    @property
    def ports(self) -> list[int]:
        """The client port of each request, in order."""
        return [r.port for r in self.requests]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: read a request, play the next reply, until either side closes."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        port = writer.get_extra_info("peername")[1]
        self.accepted.append(port)
        try:
            while True:
                request = await self._read_request(reader, port)
                if request is None:
                    self.closed_by_client.add(port)
                    return
                self.requests.append(request)
                reply = self.replies.pop(0) if self.replies else Reply()
                if reply.hold is not None and await self._client_closed_first(reader, reply.hold):
                    self.closed_by_client.add(port)
                    return
                writer.write(reply.data)
                await writer.drain()
                if reply.close:
                    return
        except ConnectionError:
            self.closed_by_client.add(port)
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()
            del self._handlers[task]

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader, port: int) -> RawRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        return RawRequest(port, head, body)

    @staticmethod
    async def _client_closed_first(reader: asyncio.StreamReader, hold: asyncio.Event) -> bool:
        reading = asyncio.create_task(reader.read(1))
        released = asyncio.create_task(hold.wait())
        await asyncio.wait({reading, released}, return_when=asyncio.FIRST_COMPLETED)
        for task in (reading, released):
            task.cancel()
        await asyncio.gather(reading, released, return_exceptions=True)
        return reading.done() and not reading.cancelled() and reading.result() == b""

    async def stop(self) -> None:
        """Drop the connections still open, so their handlers (held ones included) return."""
        handlers = list(self._handlers)
        for writer in self._handlers.values():
            writer.transport.abort()
        if handlers:
            _, stuck = await asyncio.wait(handlers, timeout=DEADLINE_SECONDS)
            assert not stuck, "a raw server handler did not return"


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    """A raw server on 127.0.0.1, port chosen by the kernel."""
    server = RawServer()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listening.close()
        await server.stop()
        await listening.wait_closed()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound once by the kernel, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class FakeClock:
    """A monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


# --- round trips -----------------------------------------------------------------------------


async def test_a_json_post_round_trips_status_headers_and_body(
    app_server: tuple[EchoApp, str],
) -> None:
    app, url = app_server
    async with lean_client() as (client, _):
        response = await client.post(
            url + "/echo?x=1",
            json={"hello": "wörld", "n": [1, 2]},
            headers={"X-Custom": "value 1", "Authorization": "Bearer t"},
        )
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["x-answer"] == "yes"
    assert response.headers["content-type"] == "application/json"
    sent = json.dumps({"hello": "wörld", "n": [1, 2]}, ensure_ascii=False, separators=(",", ":"))
    assert response.json() == {
        "length": len(sent.encode()),
        "sha256": hashlib.sha256(sent.encode()).hexdigest(),
        "path": "/echo",
    }
    [seen] = app.seen
    assert json.loads(seen.body) == {"hello": "wörld", "n": [1, 2]}
    assert seen.headers["x-custom"] == "value 1"
    assert seen.headers["authorization"] == "Bearer t"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["host"] == url.removeprefix("http://")


async def test_a_two_megabyte_request_body_arrives_byte_for_byte(
    app_server: tuple[EchoApp, str],
) -> None:
    app, url = app_server
    body = os.urandom(2 * 1024 * 1024)
    async with lean_client() as (client, _):
        response = await client.post(url + "/echo", content=body)
    assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert app.seen[0].body == body


async def test_the_raw_request_head_is_the_method_path_query_and_headers(raw: RawServer) -> None:
    async with lean_client() as (client, _):
        response = await client.put(raw.url + "/a/b%20c?q=1&r=%2F", content=b"12345")
    assert response.content == b"ok"
    [request] = raw.requests
    lines = request.head.split(b"\r\n")
    assert lines[0] == b"PUT /a/b%20c?q=1&r=%2F HTTP/1.1"
    assert b"content-length: 5" in [line.lower() for line in lines]
    assert request.body == b"12345"


@pytest.mark.parametrize("parts", [(b"first ", b"second ", b"third"), ()])
async def test_a_streamed_request_body_arrives_whole(
    app_server: tuple[EchoApp, str], parts: tuple[bytes, ...]
) -> None:
    app, url = app_server

    async def stream() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with lean_client() as (client, _):
        response = await client.post(url + "/echo", content=stream())
        after = await client.post(url + "/echo", content=b"after")
    assert (response.status_code, after.status_code) == (201, 201)
    assert [s.body for s in app.seen] == [b"".join(parts), b"after"]
    assert len(set(app.ports)) == 1


# --- keep-alive ------------------------------------------------------------------------------


async def test_consecutive_requests_reuse_one_connection(app_server: tuple[EchoApp, str]) -> None:
    app, url = app_server
    async with lean_client() as (client, _):
        for n in range(5):
            response = await client.post(url + "/echo", content=b"x" * n)
            assert response.json()["length"] == n
    assert len(app.ports) == 5
    assert len(set(app.ports)) == 1


async def test_concurrent_requests_use_several_connections_and_only_max_idle_stay_open(
    app_server: tuple[EchoApp, str],
) -> None:
    app, url = app_server

    async def burst(client: httpx.AsyncClient, size: int) -> set[int]:
        app.release.clear()
        app.arrived = 0
        first = len(app.seen)
        requests = [asyncio.create_task(client.get(url + "/held")) for _ in range(size)]
        try:
            await until(lambda: app.arrived == size, f"{size} requests are held at once")
            app.release.set()
            responses = await asyncio.gather(*requests)
        finally:
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
        assert [r.content for r in responses] == [b"released"] * size
        return set(app.ports[first:])

    async with lean_client(max_idle_per_host=2) as (client, _):
        first = await burst(client, 4)
        second = await burst(client, 4)
    assert len(first) == 4
    assert len(second) == 4
    assert len(first & second) == 2  # the two kept idle; the other two were closed


async def test_an_idle_connection_the_server_closed_is_not_reused(raw: RawServer) -> None:
    raw.script(Reply(OK, close=True), OK)  # a keep-alive answer, then the server hangs up
    async with lean_client() as (client, transport):
        assert (await client.get(raw.url)).content == b"ok"
        await until(lambda: len(raw.accepted) == 1 and not raw._handlers, "the server hung up")
        await until(
            lambda: all(
                c.transport is None or c.transport.is_closing()
                for idle in transport._idle.values()
                for c in idle
            ),
            "the client saw the hang-up",
        )
        assert (await client.get(raw.url)).content == b"ok"
    assert len(set(raw.ports)) == 2


async def test_an_idle_connection_younger_than_idle_seconds_is_reused(raw: RawServer) -> None:
    clock = FakeClock()
    async with lean_client(clock=clock) as (client, _):
        await client.get(raw.url)
        clock.now += IDLE_SECONDS - 0.01
        await client.get(raw.url)
    assert len(raw.ports) == 2
    assert len(set(raw.ports)) == 1


async def test_an_idle_connection_older_than_idle_seconds_is_closed_not_reused(
    raw: RawServer,
) -> None:
    clock = FakeClock()
    async with lean_client(clock=clock) as (client, _):
        await client.get(raw.url)
        clock.now += IDLE_SECONDS
        await client.get(raw.url)
        first, second = raw.ports
        assert first != second
        await until(lambda: first in raw.closed_by_client, "the stale connection is closed")
        assert second not in raw.closed_by_client


# --- framing ---------------------------------------------------------------------------------


async def test_a_chunked_answer_with_extensions_and_trailers_is_joined_and_keeps_the_connection(
    raw: RawServer,
) -> None:
    raw.script(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b'7 ; q="a;b"\r\n, world\r\n'
        b"A\r\n0123456789\r\n"
        b"0;last\r\nX-Sum: 17\r\nX-More: yes\r\n\r\n",
        OK,
    )
    async with lean_client() as (client, _):
        response = await client.get(raw.url)
        assert response.content == b"hello, world0123456789"
        assert (await client.get(raw.url)).content == b"ok"
    assert len(set(raw.ports)) == 1  # trailers consumed exactly: the next answer parsed cleanly


async def test_an_answer_framed_by_closing_is_read_to_the_end_and_not_reused(
    raw: RawServer,
) -> None:
    raw.script(Reply(b"HTTP/1.1 200 OK\r\n\r\nuntil the end\r\n\r\nof it", close=True))
    async with lean_client() as (client, _):
        assert (await client.get(raw.url)).content == b"until the end\r\n\r\nof it"
        assert (await client.get(raw.url)).content == b"ok"
    assert len(set(raw.ports)) == 2


@pytest.mark.parametrize(
    ("status_line", "connection", "reused"),
    [
        (b"HTTP/1.1 200 OK", b"", True),
        (b"HTTP/1.1 200 OK", b"Connection: close\r\n", False),
        (b"HTTP/1.1 200 OK", b"Connection: Upgrade, Close\r\n", False),
        (b"HTTP/1.0 200 OK", b"", False),
        (b"HTTP/1.0 200 OK", b"Connection: keep-alive\r\n", True),
    ],
)
async def test_the_connection_header_and_http_version_decide_reuse(
    raw: RawServer, status_line: bytes, connection: bytes, reused: bool
) -> None:
    # The server keeps the connection open either way: closing it is the client's decision.
    raw.script(status_line + b"\r\nContent-Length: 5\r\n" + connection + b"\r\nfirst")
    async with lean_client() as (client, _):
        assert (await client.get(raw.url)).content == b"first"
        first = raw.ports[0]
        if not reused:
            await until(lambda: first in raw.closed_by_client, "the client closes it")
        assert (await client.get(raw.url)).content == b"ok"
    assert (raw.ports[1] == first) is reused


async def test_a_204_and_a_head_answer_have_no_body_and_keep_the_connection(
    raw: RawServer,
) -> None:
    raw.script(
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        OK,
    )
    async with lean_client() as (client, _):
        no_content = await client.delete(raw.url)
        head = await client.head(raw.url)
        after = await client.get(raw.url)
    assert (no_content.status_code, no_content.content) == (204, b"")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "10")
    assert after.content == b"ok"
    assert len(set(raw.ports)) == 1


async def test_interim_1xx_answers_are_skipped(raw: RawServer) -> None:
    raw.script(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: 1\r\n\r\nfinal",
        OK,
    )
    async with lean_client() as (client, _):
        response = await client.post(raw.url, content=b"body")
        assert (await client.get(raw.url)).content == b"ok"
    assert (response.status_code, response.content) == (200, b"final")
    assert response.headers["x-final"] == "1"
    assert "link" not in response.headers
    assert len(set(raw.ports)) == 1


async def test_a_gzip_encoded_answer_is_decoded_by_httpx(raw: RawServer) -> None:
    plain = b"plain text, repeated; " * 200
    packed = gzip.compress(plain)
    raw.script(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
        + packed
    )
    async with lean_client() as (client, _):
        response = await client.get(raw.url)
    assert response.content == plain
    assert response.headers["content-encoding"] == "gzip"
    assert len(packed) < len(plain)


# --- failures --------------------------------------------------------------------------------


async def test_a_refused_connection_is_a_connect_error(raw: RawServer, free_port: int) -> None:
    async with lean_client() as (client, _):
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port}/")
        assert (await client.get(raw.url)).content == b"ok"


async def test_a_server_that_never_answers_is_a_read_timeout_and_the_connection_is_dropped(
    raw: RawServer,
) -> None:
    raw.script(Reply(hold=asyncio.Event()))  # never set
    async with lean_client(timeouts=httpx.Timeout(5, read=0.2)) as (client, _):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(raw.url)
        assert time.monotonic() - started < 3
        first = raw.ports[0]
        await until(lambda: first in raw.closed_by_client, "the timed-out connection is closed")
        assert (await client.get(raw.url)).content == b"ok"
    assert raw.ports[1] != first


BROKEN_ANSWERS = {
    "closed before answering": Reply(b"", close=True),
    "closed mid-head": Reply(b"HTTP/1.1 200 OK\r\nContent-Le", close=True),
    "closed mid-body": Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", close=True),
    "closed mid-chunk": Reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort", close=True
    ),
    "malformed status line": Reply(b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n"),
    "not HTTP at all": Reply(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    "malformed header line": Reply(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
    "malformed content length": Reply(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
    "malformed chunk size": Reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk without its CRLF": Reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n"
    ),
    "endless head": Reply(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n"),
}


@pytest.mark.parametrize("case", BROKEN_ANSWERS)
async def test_a_broken_answer_is_a_remote_protocol_error_and_the_connection_is_dropped(
    raw: RawServer, case: str
) -> None:
    broken = BROKEN_ANSWERS[case]
    raw.script(OK, Reply(broken.data, close=broken.close), OK)
    async with lean_client() as (client, _):
        assert (await client.get(raw.url)).content == b"ok"  # the broken one comes kept-alive
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(raw.url)
        first = raw.ports[0]
        if broken.close:
            await until(lambda: not raw._handlers, "the server has hung up")
        else:
            await until(lambda: first in raw.closed_by_client, "the client closes it")
        assert (await client.get(raw.url)).content == b"ok"
    assert raw.ports[0] == raw.ports[1]
    assert raw.ports[2] != first


async def test_a_cancelled_request_closes_its_connection_and_frees_its_slot(
    raw: RawServer,
) -> None:
    held = asyncio.Event()
    raw.script(Reply(hold=held))
    async with lean_client(max_connections=1) as (client, _):
        request = asyncio.create_task(client.get(raw.url))
        await until(lambda: len(raw.requests) == 1, "the server holds the request")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        first = raw.ports[0]
        await until(lambda: first in raw.closed_by_client, "the cancelled connection is closed")
        pooled = httpx.Timeout(5, pool=0.5)
        assert (await client.get(raw.url, timeout=pooled)).content == b"ok"
    assert raw.ports[1] != first


# --- the fallback, closing, the pool limit ---------------------------------------------------


class RecordingFallback(httpx.MockTransport):
    """A fallback answering every request itself, recording what it saw and its closing."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.closings = 0
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(200, content=b"from the fallback")

    async def aclose(self) -> None:
        self.closings += 1


async def test_an_https_url_goes_to_the_fallback(raw: RawServer) -> None:
    fallback = RecordingFallback()
    async with lean_client(fallback=fallback) as (client, _):
        secure = await client.post("https://controller.invalid/twirp/x", content=b"{}")
        plain = await client.get(raw.url)
    assert secure.content == b"from the fallback"
    assert [str(r.url) for r in fallback.seen] == ["https://controller.invalid/twirp/x"]
    assert plain.content == b"ok"
    assert len(raw.requests) == 1
    assert fallback.closings == 1


async def test_without_a_fallback_an_https_url_is_refused_and_http_still_works(
    raw: RawServer,
) -> None:
    transport = LeanHTTPTransport()
    try:
        with pytest.raises(httpx.UnsupportedProtocol, match="https"):
            await transport.handle_async_request(
                httpx.Request("POST", "https://controller.invalid/twirp/x", content=b"{}")
            )
        response = await transport.handle_async_request(httpx.Request("GET", raw.url))
        assert await response.aread() == b"ok"
        await response.aclose()
    finally:
        await transport.aclose()
    assert len(raw.requests) == 1


async def test_closing_closes_the_idle_connections_and_the_fallback(raw: RawServer) -> None:
    release = asyncio.Event()
    raw.script(Reply(hold=release), Reply(hold=release))
    fallback = RecordingFallback()
    async with lean_client(fallback=fallback) as (client, transport):
        both = [asyncio.create_task(client.get(raw.url)) for _ in range(2)]
        await until(lambda: len(raw.requests) == 2, "both requests are held")
        release.set()
        assert [r.content for r in await asyncio.gather(*both)] == [b"ok", b"ok"]
        assert not raw.closed_by_client
        assert fallback.closings == 0
        await transport.aclose()
        await until(lambda: raw.closed_by_client == set(raw.ports), "both idle ones are closed")
        assert fallback.closings == 1
        with pytest.raises(RuntimeError):
            await transport.handle_async_request(httpx.Request("GET", raw.url))
    assert len(set(raw.ports)) == 2


async def test_an_answer_arriving_after_closing_closes_its_connection(raw: RawServer) -> None:
    release = asyncio.Event()
    raw.script(Reply(hold=release))
    async with lean_client() as (client, transport):
        request = asyncio.create_task(client.get(raw.url))
        await until(lambda: len(raw.requests) == 1, "the request is held")
        await transport.aclose()
        release.set()
        assert (await request).content == b"ok"
        await until(lambda: raw.ports[0] in raw.closed_by_client, "its connection is closed")


async def test_beyond_max_connections_a_request_waits_up_to_the_pool_timeout(
    raw: RawServer,
) -> None:
    release = asyncio.Event()
    raw.script(Reply(hold=release))
    async with lean_client(max_connections=1) as (client, _):
        held = asyncio.create_task(client.get(raw.url))
        try:
            await until(lambda: len(raw.requests) == 1, "the first request is held")
            with pytest.raises(httpx.PoolTimeout):
                await client.get(raw.url, timeout=httpx.Timeout(5, pool=0.2))
            assert len(raw.requests) == 1
            release.set()
            assert (await held).content == b"ok"
        finally:
            held.cancel()
            await asyncio.gather(held, return_exceptions=True)
        assert (await client.get(raw.url, timeout=httpx.Timeout(5, pool=0.2))).content == b"ok"
    assert len(set(raw.ports)) == 1


async def test_a_waiting_request_gets_the_slot_when_it_frees(raw: RawServer) -> None:
    release = asyncio.Event()
    raw.script(Reply(hold=release))
    async with lean_client(max_connections=1) as (client, _):
        held = asyncio.create_task(client.get(raw.url))
        await until(lambda: len(raw.requests) == 1, "the first request is held")
        waiting = asyncio.create_task(client.get(raw.url + "/second"))
        release.set()
        first, second = await asyncio.gather(held, waiting)
    assert (first.content, second.content) == (b"ok", b"ok")
    assert raw.requests[1].head.startswith(b"GET /second ")
