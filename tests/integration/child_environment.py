"""The environment of a ``cirrus`` process started by a test.

``CIRRUS_*`` variables of the machine would override the test's files and flags, so they are
left out. OTLP export is turned off (``OTEL_*_EXPORTER=none``) unless the test configures an
exporter itself: ``cirrus`` exports only when asked to, and no test outside the telemetry tests
may send to a collector that the machine's environment happens to name (each stop would also
spend its bounded shutdown on a last export). ``/metrics`` and the rest are unchanged.
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
