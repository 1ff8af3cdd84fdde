"""The OTLP/HTTP exporters' transport on httpx, which the worker has loaded anyway.

The SDK's exporters send with ``requests`` by default: requests, urllib3, charset_normalizer,
idna and a preloaded CA bundle stay resident for the worker's whole life, about 4 MB of an idle
worker, only to POST a protobuf body every minute. This transport does the same with httpx.
The SDK keeps everything else: endpoint, headers, compression, timeouts and retries.

Certificates come from the same ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_CERTIFICATE``,
``..._CLIENT_CERTIFICATE`` and ``..._CLIENT_KEY`` variables as with the SDK's transport. A
credential provider (``OTEL_PYTHON_EXPORTER_OTLP_HTTP[_<SIGNAL>]_CREDENTIAL_PROVIDER``) hands the
SDK a ``requests.Session``; with one, the SDK's own transport is used (``wanted`` is False).
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

# What the SDK's requests transport counts as a connection error (retried by the exporter).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.ProxyError,
    httpx.RemoteProtocolError,
)


def wanted(signal: str, environ: Mapping[str, str]) -> bool:
    """False when a credential provider asks for the SDK's own (requests) transport."""
    names = (
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
        f"OTEL_PYTHON_EXPORTER_OTLP_HTTP_{signal.upper()}_CREDENTIAL_PROVIDER",
    )
    return not any(environ.get(name) for name in names)


def _setting(signal: str, suffix: str, environ: Mapping[str, str]) -> str | None:
    """The per-signal variable, else the general one (the SDK's order)."""
    return (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}")
        or environ.get(f"OTEL_EXPORTER_OTLP_{suffix}")
        or None
    )


def tls_context(signal: str, environ: Mapping[str, str]) -> ssl.SSLContext:
    """Server verification and client certificate for ``signal`` from the ``OTEL_*`` variables."""
    ca_path = _setting(signal, "CERTIFICATE", environ)
    if ca_path is None:
        context = httpx.create_ssl_context(verify=True)
    elif os.path.isdir(ca_path):
        # As with requests: a given CA file or directory replaces the default trust store.
        context = ssl.create_default_context(capath=ca_path)
    else:
        context = ssl.create_default_context(cafile=ca_path)
    client_certificate = _setting(signal, "CLIENT_CERTIFICATE", environ)
    if client_certificate:
        context.load_cert_chain(client_certificate, _setting(signal, "CLIENT_KEY", environ))
    return context


@dataclass(frozen=True, slots=True)
class HttpxResult(BaseHTTPResult):
    """One answer (or the error instead of one) of ``HttpxTransport.request``."""

    response: httpx.Response | None = field(default=None, hash=False, compare=False)

    def content(self) -> bytes:
        """The answer's body; empty without an answer."""
        return b"" if self.response is None else self.response.content

    def headers(self) -> Mapping[str, str]:
        """The answer's headers (case-insensitive); empty without an answer."""
        return {} if self.response is None else self.response.headers


class HttpxTransport(BaseHTTPTransport):
    """Sends the SDK exporters' requests with one kept-alive ``httpx.Client``."""

    def __init__(self, signal: str, environ: Mapping[str, str]) -> None:
        self._signal = signal
        self._environ = dict(environ)
        self._lock = threading.Lock()  # exports and shutdown run in different threads
        self._client: httpx.Client | None = None
        self._closed = False

    def _client_for(self, url: str) -> httpx.Client:
        """The client, made on first use for the exporter's one endpoint ``url``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the OTLP transport is closed")
            if self._client is None:
                # Only an https endpoint uses the context: no redirect is followed, and a
                # proxy's own TLS settings are separate. A CA bundle costs about 1 MB.
                https = urlsplit(url).scheme.lower() == "https"
                verify = tls_context(self._signal, self._environ) if https else False
                self._client = httpx.Client(verify=verify, follow_redirects=False)
            return self._client

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        """Send one request; an error is returned in the result, never raised."""
        try:
            response = self._client_for(url).request(
                method, url, headers=headers, content=data, timeout=timeout
            )
        except Exception as error:
            return HttpxResult(error=error)
        return HttpxResult(
            status_code=response.status_code, reason=response.reason_phrase, response=response
        )

    def close(self) -> None:
        """Close the kept-alive connections; later requests fail."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def is_connection_error(self, exception: Exception | None) -> bool:
        """Whether ``exception`` is one the exporter retries as a connection problem."""
        return isinstance(exception, CONNECTION_ERRORS)
