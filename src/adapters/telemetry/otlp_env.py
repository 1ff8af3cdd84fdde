"""What the ``OTEL_*`` variables ask of OTLP export: which signals, which protocol, timing.

Kept apart from the exporters so that deciding whether to export at all does not import the
OpenTelemetry SDK: by default nothing is exported and the SDK is never loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger("cirrus.telemetry")

GRPC = "grpc"
HTTP_PROTOBUF = "http/protobuf"

# Without an explicit timeout variable, one export (retries included) gives up after this long.
DEFAULT_EXPORT_TIMEOUT_SECONDS = 5.0
DEFAULT_METRIC_EXPORT_INTERVAL_SECONDS = 60.0


def otlp_protocol(signal: str, environ: Mapping[str, str]) -> str:
    """``grpc`` or ``http/protobuf`` for ``signal`` (``metrics`` or ``traces``), from env."""
    raw = (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or HTTP_PROTOBUF
    )
    value = raw.strip().lower()
    if value in (GRPC, HTTP_PROTOBUF):
        return value
    log.warning("OTLP protocol %r is not supported; using %s", raw, HTTP_PROTOBUF)
    return HTTP_PROTOBUF


def export_timeout(signal: str, environ: Mapping[str, str]) -> float | None:
    """Our short default timeout, or None when a variable sets one (the SDK then reads it)."""
    names = ("OTEL_EXPORTER_OTLP_TIMEOUT", f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT")
    if any(environ.get(name) for name in names):
        return None
    return DEFAULT_EXPORT_TIMEOUT_SECONDS


def metric_export_interval(environ: Mapping[str, str]) -> float:
    """Seconds between metric exports (``OTEL_METRIC_EXPORT_INTERVAL`` is in milliseconds)."""
    try:
        millis = float(environ.get("OTEL_METRIC_EXPORT_INTERVAL", ""))
    except ValueError:
        return DEFAULT_METRIC_EXPORT_INTERVAL_SECONDS
    return millis / 1000 if millis > 0 else DEFAULT_METRIC_EXPORT_INTERVAL_SECONDS


def signal_enabled(signal: str, environ: Mapping[str, str]) -> bool:
    """True when the environment asks to export ``signal``: an endpoint or ``otlp`` exporter.

    Without a collector configured, nothing is exported (no failures to log); an
    ``OTEL_<SIGNAL>_EXPORTER=none`` wins over an endpoint.
    """
    name = signal.upper()
    exporter = environ.get(f"OTEL_{name}_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{name}_ENDPOINT")
    return exporter == "otlp" or any(environ.get(key, "").strip() for key in endpoints)
