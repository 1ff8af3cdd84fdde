"""OpenTelemetry metrics and traces of the worker, OTLP export, Prometheus text and probes."""
