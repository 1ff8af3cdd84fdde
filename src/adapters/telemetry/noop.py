"""Telemetry that records nothing, for when export is disabled (the null objects live in the
domain, so that use cases default to them without importing an adapter)."""

from __future__ import annotations

from domain.telemetry_null import NullMetrics, NullTaskTrace, NullTracing

__all__ = ["NullMetrics", "NullTaskTrace", "NullTracing"]
