"""The worker's Twirp client over HTTPS: the controller's certificate is checked against the
system's CAs or the bundle ``SSL_CERT_FILE`` names, on the direct transport (no proxy named)
and through httpx's client (a proxy named, for other hosts)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.twirp.client import TwirpControllerClient, proxies_in_environment
from domain.errors import TransientControllerError
from domain.protocol import WorkerInfo, frozen_str_map
from tests.integration.asgi_server import serve_asgi

pytestmark = pytest.mark.integration

WORKER_INFO = WorkerInfo(labels=frozen_str_map({"name": "tls-worker"}))
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


def self_signed(directory: Path) -> tuple[str, str]:
    """Make a self-signed certificate for 127.0.0.1 and its key with the openssl tool."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    arguments = "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
    arguments += " -addext subjectAltName=IP:127.0.0.1"
    subprocess.run(
        ["openssl", *arguments.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The controller's certificate and key."""
    return self_signed(tmp_path_factory.mktemp("tls"))


async def _register(request: Request) -> Response:
    body = json.loads(await request.body())
    token = "granted" if body.get("registrationToken") == "registration-token-1" else ""
    return Response(json.dumps({"sessionToken": token}), media_type="application/json")


@pytest.fixture
async def https_url(certificate: tuple[str, str]) -> AsyncIterator[str]:
    """A controller answering ``Register`` over HTTPS on 127.0.0.1."""
    app = Starlette(routes=[Route("/{path:path}", _register, methods=["POST"])])
    async with serve_asgi(app, tls=certificate) as url:
        yield url


@pytest.mark.parametrize("proxy", ["no proxy named", "a proxy named for other hosts"])
async def test_a_controller_whose_certificate_ssl_cert_file_trusts_is_reached_over_https(
    https_url: str,
    certificate: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    proxy: str,
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if proxy != "no proxy named":
        # Named, but not for 127.0.0.1: the calls go through httpx's client, directly.
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert proxies_in_environment() is (proxy != "no proxy named")
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    twirp = TwirpControllerClient(https_url, "registration-token-1", "tls-worker")
    try:
        assert await twirp.register(WORKER_INFO) == "granted"
    finally:
        await twirp.aclose()


async def test_a_controller_whose_certificate_nobody_trusts_is_not_talked_to(
    https_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    other_certificate, _ = self_signed(tmp_path)  # same name, another key
    monkeypatch.setenv("SSL_CERT_FILE", other_certificate)
    twirp = TwirpControllerClient(https_url, "registration-token-1", "tls-worker")
    try:
        with pytest.raises(TransientControllerError) as refused:
            await twirp.register(WORKER_INFO)
    finally:
        await twirp.aclose()
    assert "certificate" in str(refused.value).lower()
    assert twirp.session_token == ""
