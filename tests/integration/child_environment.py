"""The environment of a ``cirrus`` process started by a test.

No OTLP collector listens during the tests. A worker or controller configured for none would
still export to the SDK's default endpoint, and spend its bounded shutdown (3 s) on a last
export that cannot succeed, at every stop. Unless the test configures an exporter itself,
OTLP export is turned off (``OTEL_*_EXPORTER=none``); ``/metrics`` and the rest are unchanged.
The telemetry tests set their own endpoints and exporters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

NO_OTLP_EXPORT = {"OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
"""What turns OTLP export off, and only that."""


def without_collector(environment: Mapping[str, str]) -> dict[str, str]:
    """Return ``environment`` with OTLP export off unless it configures an exporter."""
    configured = any(
        key.startswith("OTEL_EXPORTER_OTLP") or key in NO_OTLP_EXPORT for key in environment
    )
    return dict(environment) if configured else {**environment, **NO_OTLP_EXPORT}


def child_environment() -> dict[str, str]:
    """This test's environment without ``CIRRUS_*`` variables, OTLP export off unless set."""
    return without_collector({k: v for k, v in os.environ.items() if not k.startswith("CIRRUS_")})
