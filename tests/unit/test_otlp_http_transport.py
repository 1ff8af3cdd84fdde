"""The httpx transport of the OTLP/HTTP exporters: errors as results, credential providers."""

from __future__ import annotations

import socket

from adapters.telemetry.otlp_http_transport import HttpxTransport, wanted


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_is_a_result_the_exporter_retries() -> None:
    transport = HttpxTransport("metrics", {})
    try:
        result = transport.request(
            "POST", f"http://127.0.0.1:{closed_port()}/v1/metrics", data=b"x", timeout=2.0
        )
    finally:
        transport.close()
    assert result.status_code is None
    assert result.error is not None
    assert transport.is_connection_error(result.error)
    assert result.content() == b""
    assert dict(result.headers()) == {}


def test_a_closed_transport_answers_with_an_error_that_is_not_retried() -> None:
    transport = HttpxTransport("traces", {})
    transport.close()
    result = transport.request("POST", "http://127.0.0.1:9/v1/traces", data=b"x", timeout=1.0)
    assert isinstance(result.error, RuntimeError)
    assert not transport.is_connection_error(result.error)


def test_a_credential_provider_leaves_the_sdk_its_own_transport() -> None:
    assert wanted("metrics", {})
    assert not wanted("metrics", {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER": "p"})
    assert not wanted("traces", {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER": "p"})
    assert wanted("metrics", {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER": "p"})
